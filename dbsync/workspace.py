"""One databricks-sdk WorkspaceClient per side, with every HTTP request counted.

Counting happens in a `requests` response hook on the SDK's session, so retries (429/503) are
counted too, by method, endpoint template and status, for `dbsync_api_requests_total`.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlparse, urlsplit

import requests.adapters
from databricks.sdk.core import Config

from dbsync import metrics
from dbsync.config import WorkspaceSettings
from dbsync.errors import ConfigError, ListingError
from dbsync.pacing import RequestBudget, gives_way
from dbsync.role import WriteFenced
from dbsync.sdk import LazyWorkspaceClient

_VERSION = re.compile(r"^\d+\.\d+$")  # /api/2.0/, /api/2.1/: the API version, right after /api/


def _words(*lines: str) -> frozenset[str]:
    return frozenset(word for line in lines for word in line.split())


# The REST API's own words: the fixed path segments of every endpoint dbsync (and the SDK under it) calls, as the
# emulator serves them (tests/test_endpoint_labels.py walks its routes). An endpoint label keeps these and nothing
# else: any other segment is an object's id or name and becomes `{id}`. The rule this replaced made `{id}` only of
# segments with a digit, and `dbsync_api_requests_total` carried `/unity-catalog/catalogs/payroll`; a word missing
# from this table makes a label less precise, never a name in it.
API_WORDS = _words(
    "api preview v1 v2 oidc token .well-known oauth-authorization-server",
    "create get list update edit reset delete put add remove rename move restore search start stop restart cancel",
    "cancel-all change-owner close destroy events execute export import install uninstall pin unpin resize read",
    "repair run-now submit status test permanent-delete published result config tags rate-limits ai-gateway",
    "commands contexts clusters list-node-types list-zones spark-versions policies policy-families instance-pools",
    "instance-profiles libraries all-cluster-statuses cluster-status global-init-scripts dbfs add-block mkdirs fs",
    "files directories workspace get-status workspace-conf jobs runs get-output git-credentials repos pipelines",
    "updates secrets scopes acls groups add-member remove-member list-members list-parents scim Groups Users",
    "ServicePrincipals Me token-management tokens on-behalf-of ip-access-lists notification-destinations",
    "permissions permissionLevels effective-permissions sql warehouses endpoints statements chunks queries alerts",
    "visualizations history data_sources lakeview dashboards schedules subscriptions serving-endpoints",
    "mlflow databricks experiments get-by-name set-experiment-tag set-tag delete-tag log-batch log-metric",
    "log-parameter metrics get-history registered-models get-latest-versions model-versions get-download-uri",
    "transition-stage comments registry-webhooks",
    "unity-catalog catalogs schemas volumes functions connections storage-credentials external-locations",
)
# Collections whose next segment is always one object's id or name, even a name that is one of the API's words (a
# catalog called `list`): `/catalogs/list` is the catalog `list`, `/catalogs/{id}` in the label.
NAMED_NEXT = _words(
    "catalogs schemas volumes functions connections storage-credentials external-locations",
    "git-credentials global-init-scripts ip-access-lists notification-destinations policy-families repos tokens",
    "pipelines updates warehouses endpoints statements chunks queries alerts serving-endpoints",
    "dashboards schedules subscriptions Groups Users ServicePrincipals",
)
# `/permissions/<object type>/<id>`: the object types of the Permissions API (`sql/warehouses`, `authorization/tokens`
# in two words) and the securable types of Unity Catalog's grants (in either case); then the object's id or name.
PERMISSION_TYPES = _words(
    "alerts cluster-policies clusters dashboards directories experiments files instance-pools jobs notebooks",
    "passwords pipelines queries registered-models repos serving-endpoints tokens warehouses",
    "CATALOG CONNECTION EXTERNAL_LOCATION FUNCTION METASTORE SCHEMA STORAGE_CREDENTIAL TABLE VOLUME",
)
TYPE_PREFIXES = frozenset({"sql", "authorization"})
# `/fs/files/Volumes/main/raw/a.csv`: after these, the rest of the path is one file's path, `{path}` however deep.
PATH_TAILS = ("fs/files", "fs/directories")


def endpoint_template(path: str) -> str:
    """/api/2.1/unity-catalog/catalogs/payroll → /api/2.1/unity-catalog/catalogs/{id}: the label of a request.

    Only the API's own words stay (API_WORDS); an object's id or name, whatever it looks like, is `{id}` (a run of
    them one), and a file's path `{path}`: a label never names an object, and there are as many labels as
    endpoints, not as objects.
    """
    template: list[str] = []
    expect = "word"  # the next segment: a "word" of the API, a "name" (an object's), or a permission's object "type"
    for i, part in enumerate(path.split("/")):
        if expect == "type" and (part in TYPE_PREFIXES or part in PERMISSION_TYPES or part.upper() in PERMISSION_TYPES):
            template.append(part)
            expect = "type" if part in TYPE_PREFIXES else "name"
            continue
        word = expect == "word" and (part in API_WORDS or part == "" or (i == 2 and bool(_VERSION.match(part))))
        if word:
            template.append(part)
        elif template[-1] != "{id}":
            template.append("{id}")
        if word and "/".join(template[-2:]) in PATH_TAILS:
            return "/".join(template) + "/{path}"
        if word and part in NAMED_NEXT:
            expect = "name"
        elif word and part.endswith("permissions"):  # permissions, effective-permissions
            expect = "type"
        else:
            expect = "word"
    return "/".join(template)


# Query parameters that move a listing to its next page: page tokens, and SCIM's startIndex.
PAGE_PARAMETERS = frozenset({"page_token", "next_page_token", "startIndex"})
_PAGE_NEEDLES = tuple(f"{name}=" for name in PAGE_PARAMETERS)
FIRST_PAGE = {"startIndex": "1"}


@dataclass
class _Pages:
    """The pages of one listing seen so far: the tokens asked for and a hash of every item returned."""

    tokens: set[str] = field(default_factory=set)
    items: set[int] = field(default_factory=set)


class PagingGuard:
    """Ends a listing whose pages go round in a circle, whatever SDK iterator does the paging.

    The SDK pages for us (`while next_page_token: ...`) and trusts the service: a page that answers its
    own token, or a new token to pages already served, never ends. This response hook follows each
    listing (one thread, one path, the same filters) and raises ListingError when a page token comes
    round again or a page holds only items already returned. The first page of a listing carries no
    token, so only later pages are read twice (once here, once by the SDK).
    """

    MAX_LISTINGS = 16  # per thread: listings nest only a few deep (a listing per item of another)

    def __init__(self, side: str) -> None:
        self.side = side
        self._local = threading.local()

    def _listings(self) -> OrderedDict[tuple[str, tuple[tuple[str, str], ...]], _Pages]:
        listings = getattr(self._local, "listings", None)
        if listings is None:
            listings = self._local.listings = OrderedDict()
        return listings

    def __call__(self, response: Any, *args: Any, **kwargs: Any) -> None:
        request = response.request
        if request.method != "GET" or "?" not in request.url:
            return
        listings = self._listings()
        base = request.url.split("?", 1)[0]
        paged = any(needle in request.url for needle in _PAGE_NEEDLES)
        if not paged and not any(known == base for known, _ in listings):
            return  # the common case, a GET of no listing this thread follows: no parsing
        url = urlparse(request.url)
        query = parse_qsl(url.query, keep_blank_values=True)
        paging = {k: v for k, v in query if k in PAGE_PARAMETERS}
        key = (base, tuple(sorted((k, v) for k, v in query if k not in PAGE_PARAMETERS)))
        if not paging or paging == FIRST_PAGE:
            listings.pop(key, None)  # a listing starts again from its first page
            if not paging:
                return
        pages = listings.get(key) or _Pages()
        listings[key] = pages
        listings.move_to_end(key)
        while len(listings) > self.MAX_LISTINGS:
            listings.popitem(last=False)
        position = paging.get("page_token") or paging.get("next_page_token") or f"startIndex={paging['startIndex']}"
        self._check(url.path, pages, position, response)

    def _check(self, path: str, pages: _Pages, position: str, response: Any) -> None:
        # Only answered pages count: the SDK asks again for a page refused with 429 or 503.
        if response.status_code != 200 or "json" not in response.headers.get("Content-Type", ""):
            return  # an error or a non-JSON answer fails in the SDK with its own message
        if position in pages.tokens:
            self._fail(path, "a page was asked for twice")
        pages.tokens.add(position)
        try:
            document = response.json()
        except ValueError:
            return
        if not isinstance(document, dict):
            return
        # The listed objects: the dicts in the page's lists (not, say, SCIM's "schemas" strings).
        lists = [v for v in document.values() if isinstance(v, list)]
        items = {_identity(item) for v in lists for item in v if isinstance(item, dict)}
        if items and items <= pages.items:
            self._fail(path, "a page held only items already listed")
        pages.items |= items
        next_token = document.get("next_page_token")
        if next_token and next_token in pages.tokens:
            self._fail(path, "the next page token is one already followed")

    def _fail(self, path: str, why: str) -> None:
        raise ListingError(
            f"{self.side}: the pages of GET {path} go round in a circle ({why}): the listing is stopped as "
            "failed, nothing is deleted, and it is listed again next cycle"
        )


def _identity(item: dict[str, Any]) -> int:
    """A hash of an item's top-level scalars (its id, name, timestamps): cheap, nested settings are skipped."""
    scalars = tuple((k, v) for k, v in item.items() if isinstance(v, str | int | float | bool))
    return hash(scalars) if scalars else hash(json.dumps(item, sort_keys=True))


@dataclass
class Workspace:
    """A side of the pair: its SDK client and the requests it has made."""

    side: str  # "source" | "target"
    client: LazyWorkspaceClient
    calls: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _counters: dict[tuple[str, str, int], Any] = field(default_factory=dict, repr=False)  # dbsync_api_requests_total
    # Asked before every request that can change the workspace (see dbsync/role.py); None: no fence.
    fence: Any = None
    # Taken before every request (dbsync/pacing.py); None: unpaced.
    budget: RequestBudget | None = None

    def __post_init__(self) -> None:
        session = self.client.api_client._api_client._session  # the SDK exposes no public hook
        session.hooks["response"].append(self._count)
        session.hooks["response"].append(PagingGuard(self.side))
        self._fence_adapters()

    def _fence_adapters(self) -> None:
        """Every request of this side asks its fence and budget: the session's adapters know the Workspace."""
        for adapter in self.client.api_client._api_client._session.adapters.values():
            if isinstance(adapter, FencedAdapter):
                adapter.workspace = self

    def _count(self, response: Any, *args: Any, **kwargs: Any) -> None:
        request = response.request
        key = (request.method, endpoint_template(urlsplit(request.url).path), response.status_code)
        with self._lock:
            self.calls[key] += 1
            counter = self._counters.get(key)
            if counter is None:  # `labels()` looks its child up under the metric's lock: once per endpoint and status
                counter = self._counters[key] = metrics.API_REQUESTS.labels(self.side, key[0], key[1], str(key[2]))
        counter.inc()

    def keep_connections(self, size: int) -> None:
        """Keep up to `size` connections open (the daemon: its workers' cycles call at once); never fewer."""
        if size > (self.client.config.max_connections_per_pool or 0):
            self.client.config.max_connections_per_pool = size
            _mount_http_pool(self.client, size)
            self._fence_adapters()

    @property
    def host(self) -> str:
        return self.client.config.host or ""

    def workspace_id(self) -> str:
        """The workspace id (from host metadata, or the X-Databricks-Org-Id header of /Me)."""
        return str(self.client.get_workspace_id())

    def total_calls(self, endpoint_prefix: str = "") -> int:
        with self._lock:
            return sum(n for (_, endpoint, _), n in self.calls.items() if endpoint.startswith(endpoint_prefix))

    def write_calls(self) -> int:
        """Requests that can change the workspace (anything but GET)."""
        with self._lock:
            return sum(n for (method, _, _), n in self.calls.items() if method != "GET")

    def calls_by_endpoint(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        with self._lock:
            for (method, endpoint, _), n in self.calls.items():
                out[f"{method} {endpoint}"] += n
        return dict(out)

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()


def connect(
    side: str,
    settings: WorkspaceSettings,
    retry_timeout_seconds: int = 300,
    http_timeout_seconds: int = 60,
    concurrency: int = 8,
    probe_timeout_seconds: int | None = None,
) -> Workspace:
    """A Workspace for one side from host+token or a ~/.databrickscfg profile.

    `probe_timeout_seconds` bounds the SDK's host-metadata probe at construction (it otherwise retries an
    unreachable host for the whole `retry_timeout_seconds`): a daemon starting during a source outage.
    """
    kwargs: dict[str, Any] = {
        "retry_timeout_seconds": probe_timeout_seconds or retry_timeout_seconds,
        "http_timeout_seconds": http_timeout_seconds,
        "max_connection_pools": pool_size(concurrency),
        "max_connections_per_pool": pool_size(concurrency),
    }
    if settings.profile:
        kwargs["profile"] = settings.profile
        if settings.config_file:
            kwargs["config_file"] = str(settings.config_file)
    else:
        kwargs["host"] = settings.host
        kwargs["token"] = settings.token.get_secret_value() if settings.token else None
        kwargs["auth_type"] = "pat"
    try:
        config = Config(**kwargs)
    except ValueError as err:
        # The SDK's message names the config it tried; the token is masked by the SDK.
        raise ConfigError(f"{side}: cannot configure the Databricks client: {err}") from None
    config.retry_timeout_seconds = retry_timeout_seconds  # the probe is done: every call gets the full budget
    client = LazyWorkspaceClient(config)  # the APIs a run uses, not the SDK's ~60 service modules
    _mount_http_pool(client, pool_size(concurrency))
    _read_environment_once(client)
    return Workspace(side, client, budget=request_budget(side, settings))


def request_budget(side: str, settings: WorkspaceSettings) -> RequestBudget | None:
    """The side's request budget from its settings (published as a metric), None when it is unpaced."""
    budget = RequestBudget(side, settings.max_requests_per_second, settings.family_requests_per_second.model_dump())
    if not budget.paced:
        return None
    budget.export()
    return budget


def cycle_threads(concurrency: int) -> int:
    """Threads of one cycle that may call a workspace at once: its pool of `concurrency`, a listing pool beside
    it (the tree read ahead, secret scopes, dashboard schedules) and the two for reads an audit-log hint named."""
    return 2 * concurrency + 2


def pool_size(concurrency: int, cycles: int = 1) -> int:
    """Connections kept open to a workspace for `cycles` cycles running at once (the daemon's workers)."""
    return max(20, cycles * cycle_threads(concurrency))


def _mount_http_pool(client: LazyWorkspaceClient, size: int) -> None:
    """Every request goes through a FencedAdapter keeping up to `size` connections open. A call beyond them opens
    a connection that is thrown away after it, with a WARNING from urllib3 ("Connection pool is full")."""
    # The SDK sizes its pool for https only; plain-http hosts (the emulator) get the same pool size.
    session = client.api_client._api_client._session
    for scheme in ("http://", "https://"):
        session.mount(scheme, FencedAdapter(pool_connections=size, pool_maxsize=size))


def _read_environment_once(client: LazyWorkspaceClient) -> None:
    """Proxies (HTTPS_PROXY, NO_PROXY) and CA bundle (REQUESTS_CA_BUNDLE) read once for the workspace's host.

    `requests` reads them, and looks for ~/.netrc, on every request: about a fifth of the client's CPU per
    request. One side talks to one host, so its session keeps what the environment says for that host.
    """
    session = client.api_client._api_client._session
    settings = session.merge_environment_settings(client.config.host, {}, None, None, None)
    session.proxies = settings["proxies"]
    session.verify = settings["verify"]
    session.trust_env = False


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class FencedAdapter(requests.adapters.HTTPAdapter):
    """The SDK's transport, which asks the Workspace's fence before sending anything but a read, then
    waits for the request's turn in the workspace's budget.

    Every request of every kind, the delete phase and a retry alike, passes here, so the check is made
    before each write, not once per cycle, and no request can go around the budget. A write that waited
    for its turn asks again: the wait can be long (a busy queue), and a cutover counts on a write going
    out no later than MARKER_TTL_SECONDS after its fence last read the target's marker (dbsync/role.py).
    """

    workspace: Workspace | None = None

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        fence = self.workspace.fence if self.workspace is not None else None
        fenced = fence is not None and request.method not in READ_METHODS
        if fenced:
            self._ask(fence, request)
        budget = self.workspace.budget if self.workspace is not None else None
        if budget is not None and budget.take(request.path_url, gives_way()) > 0 and fenced:
            self._ask(fence, request)
        return super().send(request, *args, **kwargs)

    @staticmethod
    def _ask(fence: Any, request: Any) -> None:
        reason = fence.refusal()
        if reason:
            raise WriteFenced(f"{request.method} {endpoint_template(urlparse(request.url).path)} refused: {reason}")
