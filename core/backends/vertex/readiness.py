"""What Google Cloud can tell before a Vertex AI launch, without creating anything.

:func:`assess` asks the Cloud Storage JSON API and Resource Manager, as google-cloud-storage
and google-cloud-resource-manager call them:

* ``GET /storage/v1/b/BUCKET``: the staging bucket exists (and which project owns it);
* ``GET /storage/v1/b/BUCKET/iam/testPermissions``: your account may write the trainer and
  data there and read them back (testIamPermissions needs no permission of its own);
* who runs the trials may read the bucket. That is the service account Settings names, else
  the project's Vertex AI Custom Code Service Agent,
  ``service-PROJECT_NUMBER@gcp-sa-aiplatform-cc.iam.gserviceaccount.com``, as which
  Vertex AI runs training containers by default (its role on the project reads the project's
  own buckets, granted when Vertex AI creates it, so only a bucket of another project needs a
  grant). The project's number comes from ``GET /v3/projects/PROJECT``; the grants from the
  bucket's IAM policy (``GET /storage/v1/b/BUCKET/iam``) and its project's
  (``POST /v3/projects/NUMBER:getIamPolicy``).

A definite answer (no such bucket, a permission you lack, a reader with no grant in either
policy) is a problem with the fix; what cannot be read (no permission to look, the service
unreachable, a grant through a group, a custom role or a condition) is a note that never
refuses. Grants on folders and the organization, and deny policies, are not visible here.

Example:
    >>> assess(storage_client, projects_client, settings).problems
    ['The staging bucket gs://my-bucket does not exist: create it ...']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from core.backends.cloud import Assessment
from core.backends.vertex.request import bucket_name

TIMEOUT_S = 10.0
"""Each readiness call waits at most this long, once (no retries: it is a check)."""
CALLER_NEEDS = ("storage.objects.create", "storage.objects.get")
"""What the launch does in the bucket: upload the trainer and data, read the data marker."""
AGENT = "service-{number}@gcp-sa-aiplatform-cc.iam.gserviceaccount.com"
AGENT_LABEL = "The Vertex AI Custom Code Service Agent"
READ_ROLES = frozenset(
    {
        "roles/storage.objectViewer",
        "roles/storage.objectUser",
        "roles/storage.objectAdmin",
        "roles/storage.admin",
        "roles/storage.legacyObjectReader",
        "roles/storage.legacyObjectOwner",
        "roles/owner",
        "roles/editor",
        "roles/viewer",
        "roles/aiplatform.customCodeServiceAgent",
        "roles/aiplatform.serviceAgent",
    }
)
"""Predefined roles that let a principal read a bucket's objects (storage.objects.get).
Basic roles read through the bucket's default project-convenience bindings; the Vertex AI
service agents' roles read the buckets of their own project."""
EVERYONE = ("allUsers", "allAuthenticatedUsers")
_MAYBE = ("group:", "domain:", "principalSet:", "principal:")
"""Members that may include a service account without naming it."""

ClientFactory = Callable[[], Any]


def _errors() -> tuple[type[Exception], ...]:
    """What the Google clients raise for a refusal, a bad credential or the network (never
    anything else: a test's loopback guard must not turn into a note)."""
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError

    return (GoogleAPIError, GoogleAuthError, OSError, ValueError)


def _kind(err: Exception) -> str:
    return type(err).__name__


def _refused_credentials(err: Exception) -> bool:
    return _kind(err) in ("DefaultCredentialsError", "RefreshError", "Unauthenticated")


def _short(err: Exception) -> str:
    """The service's own message (not the request line the client puts before it)."""
    text = str(getattr(err, "message", None) or err or _kind(err))
    return text.splitlines()[0].rstrip(".")


def _why(err: Exception, needs: str) -> str:
    """Why a call failed, in brackets' words: a refusal names the permission it needs."""
    if _kind(err) in ("Forbidden", "PermissionDenied"):
        return f"{_kind(err)}; it needs {needs}"
    return f"{_kind(err)}: {_short(err)}"


def assess(
    storage: ClientFactory, projects: ClientFactory, settings: Mapping[str, Any], source: str
) -> Assessment:
    """Ask Cloud Storage and Resource Manager what they can say about a launch.

    Args:
        storage: builds a google.cloud.storage Client.
        projects: builds a google.cloud.resourcemanager_v3 ProjectsClient.
        settings: Vertex AI settings that passed the offline checks.
        source: where the credentials come from, in words.
    """
    found = Assessment()
    name = bucket_name(settings)
    where = f"gs://{name}"
    try:
        client = storage()
        bucket = client.get_bucket(name, timeout=TIMEOUT_S, retry=None)
    except _errors() as err:
        kind = _kind(err)
        if kind == "NotFound":
            found.problems.append(
                f"The staging bucket {where} does not exist: create it in the jobs' region "
                f"(`gcloud storage buckets create {where} --project={settings.get('project')} "
                f"--location={settings.get('region')}`) or fix Settings → Vertex AI → Staging bucket."
            )
        elif kind == "DefaultCredentialsError":
            found.problems.append(
                f"The Google Cloud credentials from {source} could not be loaded "
                f"({_short(err)}): run `gcloud auth application-default login` again, or point "
                "GOOGLE_APPLICATION_CREDENTIALS at a valid service-account key file."
            )
        elif _refused_credentials(err):
            found.problems.append(
                f"Google Cloud refused the credentials from {source} ({kind}: {_short(err)}): "
                "run `gcloud auth application-default login` again."
            )
        elif kind == "Forbidden":
            found.notes.append(
                f"Could not check that {where} exists or who may read it: your account may "
                "not read the bucket's metadata (storage.buckets.get)."
            )
            found.extend(_caller(client.bucket(name), where))
        else:
            found.notes.append(_unreachable(where, err))
        return found
    found.extend(_caller(bucket, where))
    found.extend(_reader(bucket, projects, settings, where))
    return found


def _unreachable(where: str, err: Exception) -> str:
    return (
        f"Could not reach Google Cloud to check the staging bucket {where} ({_kind(err)}: "
        f"{_short(err)}); it is checked when the launch uploads to it."
    )


def _caller(bucket: Any, where: str) -> Assessment:
    """testIamPermissions: what the caller may do in the bucket (the uploads)."""
    found = Assessment()
    try:
        held = set(bucket.test_iam_permissions(list(CALLER_NEEDS), timeout=TIMEOUT_S, retry=None))
    except _errors() as err:
        found.notes.append(
            f"Could not check that your account may upload to {where} ({_kind(err)}: "
            f"{_short(err)})."
        )
        return found
    missing = [p for p in CALLER_NEEDS if p not in held]
    if missing:
        found.problems.append(
            f"Your Google Cloud account lacks {', '.join(missing)} on {where}, which the launch "
            "needs to upload the trainer and the data: grant it Storage Object User on the "
            f"bucket (`gcloud storage buckets add-iam-policy-binding {where} "
            "--member=user:YOUR-EMAIL --role=roles/storage.objectUser`)."
        )
    return found


def _reader(
    bucket: Any, projects: ClientFactory, settings: Mapping[str, Any], where: str
) -> Assessment:
    """Whether who runs the trials may read the bucket: its grants, or its project's."""
    found = Assessment()
    project = str(settings.get("project"))
    custom = str(settings.get("service_account") or "").strip()
    bucket_project = str(getattr(bucket, "project_number", "") or "")
    number: str | None = None
    try:
        client = projects()
        number = _project_number(client, project)
    except _errors() as err:
        if not custom:
            found.notes.append(
                f"Could not check that the Vertex AI Custom Code Service Agent of {project} can "
                f"read {where}: the project's number could not be read "
                f"({_why(err, 'resourcemanager.projects.get')})."
            )
            return found
        client = None
    reader = custom or AGENT.format(number=number)
    label = (
        "The service account of Settings → Vertex AI → Service account for the trials"
        if custom
        else AGENT_LABEL
    )
    who = label[0].lower() + label[1:]
    if not custom and bucket_project and bucket_project == number:
        return found  # the agent's role on its project reads the project's buckets
    policies: list[list[Mapping[str, Any]]] = []
    try:
        policy = bucket.get_iam_policy(requested_policy_version=3, timeout=TIMEOUT_S, retry=None)
        policies.append(list(policy.bindings))
    except _errors() as err:
        found.notes.append(
            f"Could not check that {who} ({reader}) can read {where}: the bucket's IAM "
            f"policy could not be read ({_why(err, 'storage.buckets.getIamPolicy')})."
        )
        return found
    project_bindings: list[Mapping[str, Any]] | None = None
    if client is not None and bucket_project:
        try:
            project_bindings = _project_bindings(client, f"projects/{bucket_project}")
            policies.append(project_bindings)
        except _errors():  # then project-level grants are unknown
            project_bindings = None
    verdict = grants(policies, reader)
    if verdict == "yes":
        return found
    if verdict == "maybe" or project_bindings is None:
        found.notes.append(
            f"Could not be sure that {reader} can read {where}: no grant names it in the "
            "policies CloudTune could read, but a group, a custom role, a condition or the "
            "bucket's project policy may give it; if not, the trials fail reading the trainer."
        )
        return found
    found.problems.append(
        f"{label} ({reader}), which runs the trials, may not read {where}: grant it Storage "
        f"Object Viewer on the bucket (`gcloud storage buckets add-iam-policy-binding {where} "
        f"--member=serviceAccount:{reader} --role=roles/storage.objectViewer`)."
    )
    return found


def _project_number(client: Any, project: str) -> str:
    found = client.get_project(name=f"projects/{project}", timeout=TIMEOUT_S, retry=None)
    return str(found.name).split("/", 1)[1]


def _project_bindings(client: Any, resource: str) -> list[Mapping[str, Any]]:
    policy = client.get_iam_policy(
        request={"resource": resource, "options": {"requested_policy_version": 3}},
        timeout=TIMEOUT_S,
        retry=None,
    )
    return [
        {
            "role": b.role,
            "members": list(b.members),
            "condition": b.condition.expression if b.condition.expression else None,
        }
        for b in policy.bindings
    ]


def grants(policies: Iterable[Iterable[Mapping[str, Any]]], service_account: str) -> str:
    """Whether bindings let ``service_account`` read objects: "yes", "maybe" or "no".

    "yes": a predefined reading role names it (or everyone) without a condition. "maybe": a
    binding could apply without naming it (a group, a domain, a principal set), or names it
    with a custom role or a condition, which CloudTune does not expand.
    """
    member = f"serviceAccount:{service_account}"
    maybe = False
    for bindings in policies:
        for binding in bindings:
            members = [str(m) for m in binding.get("members") or ()]
            role = str(binding.get("role") or "")
            named = member in members or any(m in EVERYONE for m in members)
            could = named or any(m.startswith(_MAYBE) for m in members)
            if not could:
                continue
            if named and role in READ_ROLES and not binding.get("condition"):
                return "yes"
            if not role.startswith("roles/") or role in READ_ROLES:
                maybe = True
    return "maybe" if maybe else "no"
