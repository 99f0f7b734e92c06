"""linkmon: watches the WAN links of Dukcapil offices and tells people when one breaks."""

__version__ = "0.1.0"
