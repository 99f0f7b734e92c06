"""linkmon's Grafana dashboards, described with grafana-foundation-sdk (Grafana's typed generator).

``states`` says what linkmon's series mean on a dashboard (state codes, words and colours),
``panels`` the panel kinds in the house style, ``board`` the layout, the template variables and
the dashboard frame; ``noc_overview``, ``link_detail`` and ``availability`` are one dashboard each.
``grafana/build_dashboards.py`` writes them to ``grafana/dashboards/*.json``.
"""
