"""A small client of Prometheus' HTTP API: instant queries and series look-ups.

Every failure becomes one :class:`PrometheusUnavailable` that says where (the URL without its
password) and what went wrong, in the words of the layer that failed: the network, HTTP, or
Prometheus itself (``bad_data: parse error ...`` with the query it refused). Queries go as
POST forms, so a long ``agent=~"..."`` list never hits a URL length limit. The same API is
spoken by Thanos Query and VictoriaMetrics.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from ..urls import redact


class PrometheusUnavailable(Exception):
    """Prometheus could not be read: names the URL (without credentials) and the reason."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot read the fleet from Prometheus at {redact(url)}: {reason}")


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector: its labels and value (NaN stays NaN)."""

    labels: Mapping[str, str]
    value: float


class Prometheus:
    """An open connection to one Prometheus; use as ``async with Prometheus(url) as p``.

    Credentials in the URL (``https://noc:secret@prometheus:9090``) are sent as basic auth.
    Proxy variables are ignored: Prometheus is on the NOC's own network.
    """

    def __init__(
        self,
        url: str,
        timeout: float = 10.0,
        ca_file: Path | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            try:
                verify = ssl.create_default_context(cafile=str(ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise PrometheusUnavailable(url, f"cannot load CA file {ca_file}: {exc}") from None
        try:
            self._client = httpx.AsyncClient(
                base_url=self.url,
                timeout=timeout,
                verify=verify,
                trust_env=False,
                transport=transport,
            )
        except (httpx.InvalidURL, ValueError) as exc:
            raise PrometheusUnavailable(url, f"not a usable URL ({exc})") from None

    async def __aenter__(self) -> Prometheus:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def query(self, expr: str, at: float) -> list[Sample]:
        """The instant vector ``expr`` evaluates to at ``at`` (unix seconds)."""
        data = await self._call(
            "POST", "/api/v1/query", [("query", expr), ("time", f"{at:.3f}")], expr
        )
        if not isinstance(data, dict) or data.get("resultType") != "vector":
            kind = data.get("resultType") if isinstance(data, dict) else type(data).__name__
            raise PrometheusUnavailable(
                self.url, f"expected an instant vector from {expr!r}, got {kind}"
            )
        try:
            # values come as strings: "1", "NaN", "+Inf"
            return [Sample(row["metric"], float(row["value"][1])) for row in data["result"]]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise PrometheusUnavailable(
                self.url, f"the answer to {expr!r} is not a Prometheus vector ({exc!r})"
            ) from None

    async def label_values(
        self, label: str, matches: Sequence[str], start: float, end: float
    ) -> list[str]:
        """Values of ``label`` on series matching any of ``matches`` in [start, end]."""
        # GET only on Prometheus 2.42 (POST came in 2.48)
        data = await self._call(
            "GET",
            f"/api/v1/label/{label}/values",
            [*(("match[]", match) for match in matches), *_range(start, end)],
            " or ".join(matches),
        )
        if not isinstance(data, list) or not all(isinstance(value, str) for value in data):
            raise PrometheusUnavailable(self.url, f"the values of {label!r} are not a list")
        return data

    async def series(
        self, matches: Sequence[str], start: float, end: float
    ) -> list[Mapping[str, str]]:
        """Label sets of the series matching any of ``matches`` with samples in [start, end]:
        an index look-up, no samples read, so a day of history costs little."""
        form = [*(("match[]", match) for match in matches), *_range(start, end)]
        data = await self._call("POST", "/api/v1/series", form, " or ".join(matches))
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise PrometheusUnavailable(self.url, "the series answer is not a list of label sets")
        return data

    async def _call(
        self, method: str, path: str, params: Sequence[tuple[str, str]], what: str
    ) -> Any:
        endpoint = self.url + path
        try:
            if method == "GET":
                response = await self._client.get(path, params=_group(params), headers=_ACCEPT)
            else:
                response = await self._client.post(path, data=_group(params), headers=_ACCEPT)
        except httpx.TimeoutException:
            raise PrometheusUnavailable(
                self.url, f"no answer within {self.timeout:g} s to {what!r}"
            ) from None
        except httpx.HTTPError as exc:
            raise PrometheusUnavailable(self.url, f"{type(exc).__name__}: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("status") == "error":
            # Prometheus' own answer to a query it refused (400, 422, 503): its words, the query
            raise PrometheusUnavailable(
                endpoint,
                f"HTTP {response.status_code}: {body.get('errorType')}: {body.get('error')} "
                f"(query {what!r})",
            )
        if response.status_code != 200:
            raise PrometheusUnavailable(endpoint, _http_reason(response))
        if not isinstance(body, dict) or body.get("status") != "success" or "data" not in body:
            raise PrometheusUnavailable(
                endpoint, "the answer is not Prometheus API JSON: is this URL a Prometheus?"
            )
        return body["data"]


_ACCEPT = {"Accept": "application/json"}


def _range(start: float, end: float) -> list[tuple[str, str]]:
    return [("start", f"{start:.3f}"), ("end", f"{end:.3f}")]


def _group(params: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """Form fields as httpx takes them: a repeated name (``match[]``) as a list."""
    grouped: dict[str, list[str]] = {}
    for name, value in params:
        grouped.setdefault(name, []).append(value)
    return grouped


def _http_reason(response: httpx.Response) -> str:
    hint = {
        401: " (give credentials in the URL: https://user:password@host:port)",
        404: " (is this the base URL of a Prometheus, e.g. http://host:9090?)",
    }.get(response.status_code, "")
    text = " ".join(response.text.split())[:200]
    return f"HTTP {response.status_code} {response.reason_phrase}{hint}" + (
        f": {text}" if text else ""
    )
