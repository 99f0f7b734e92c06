"""Where a state change becomes a page.

``compose``: the state machine's alert facts as alerts (labels, fingerprint, words);
``model``: the alert and the two wire formats (Alertmanager webhook v4, Alertmanager API v2);
``text``: what people read, in Bahasa Indonesia or English, in the site's local time;
``receivers``: webhook and Alertmanager behind one interface;
``outbox``: durable, ordered, retried delivery to every receiver.

The state machine never imports this package; this package reads its fact types.
"""
