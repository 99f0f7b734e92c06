"""linkmon: watches the WAN links of Dukcapil offices and tells people when one breaks."""

import sys

__version__ = "0.1.0"

# httpx imports its own command line (httpx._main: rich, pygments, click) whenever those are
# installed, and linkmon's CLI installs rich: 70 modules and 3.6 MB the daemon would hold for
# months and never use (encode/httpx#3547 moves that import out of httpx/__init__). A None
# entry makes `import httpx._main` fail, and httpx falls back to its stub for a missing CLI.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
