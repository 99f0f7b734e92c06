"""The linkmon configuration: YAML in, one validated, fully resolved, frozen model out.

Everything is checked before the daemon starts (or reloads), and every mistake is reported at
once with its path in the YAML (``links[3].probes[0].timeout: must be less than interval 2s``).

Where each concern lives:

- ``errors``: ``ConfigError``, the listing ``check-config`` prints, how values and paths read.
- ``secrets``: ``${ENV}`` and ``file:`` values, held as a ``Secret`` that never shows itself.
- ``scalars``: checks on one value (ids, addresses, durations, URLs, times of day).
- ``model``: the pydantic models a config is made of, and look-ups by id.
- ``reading``: YAML to a document (YAML 1.2 scalars, strict keys, no alias bombs).
- ``messages``: pydantic's errors in linkmon's words.
- ``inheritance``: defaults → link → probe and → site; checks on effective settings.
- ``crosschecks``: ids, references, hierarchy, dependency cycles, receivers, maintenance.
- ``loading``: ``load_config`` and ``parse_config``, the steps above in order.
- ``apart``: ``load_config_apart``, a large file loaded in a child process for the daemon.

The maintenance calendar (when a window covers a link) is ``linkmon.maintenance``.

Durations are strings with a unit (``500ms``, ``10s``, ``2m``, ``1h``, ``1m30s``); a bare
number is refused because ``interval: 10`` could mean seconds or milliseconds. Relative paths
(``storage.path``, ``server.web_config``, ``file:`` secrets) are relative to the config file's
directory.
"""

from linkmon.maintenance import WEEKDAYS

from .apart import LOAD_APART_BYTES, load_config_apart
from .errors import ConfigError, format_errors
from .loading import load_config, parse_config
from .model import (
    Agent,
    Alerting,
    Config,
    Defaults,
    Degraded,
    Flapping,
    HttpProbe,
    IcmpProbe,
    IcmpSettings,
    Link,
    MaintenanceWindow,
    ProbeConfig,
    Receiver,
    Rollup,
    Server,
    ServiceHours,
    Site,
    Storage,
    TcpProbe,
)
from .secrets import Secret

__all__ = [
    "LOAD_APART_BYTES",
    "WEEKDAYS",
    "Agent",
    "Alerting",
    "Config",
    "ConfigError",
    "Defaults",
    "Degraded",
    "Flapping",
    "HttpProbe",
    "IcmpProbe",
    "IcmpSettings",
    "Link",
    "MaintenanceWindow",
    "ProbeConfig",
    "Receiver",
    "Rollup",
    "Secret",
    "Server",
    "ServiceHours",
    "Site",
    "Storage",
    "TcpProbe",
    "format_errors",
    "load_config",
    "load_config_apart",
    "parse_config",
]
