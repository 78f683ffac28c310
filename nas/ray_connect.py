"""Starting or reaching Ray: a local Ray, or a cluster, with one clear error when that fails.

Ray 2.60 clusters started with ``ray start`` ask for a token; a driver without
it used to see Ray's raw retry log and a message that hid the cause. Here the
cluster is asked once before connecting, and a refusal names authentication
and what to set. Kept apart from the executors, which only run trials.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
from typing import Any

from nas.quiet_tf import DEFAULT_TF_LOG_LEVEL
from search_space.errors import UserError


class ExecutorError(UserError, RuntimeError):
    """Ray cannot be started or reached, or cannot run a trial as configured, or the cluster was lost."""


def init_ray(address: str | None) -> None:
    """Starts a local Ray (dashboard off, resources detected) or connects to a cluster.

    Without an address the Ray is always a new local one (``RAY_ADDRESS`` and
    a cluster already running on this machine are not joined: pass
    ``--ray_address=auto`` for that), so a search runs where the command
    line says it does.

    Workers see this process's import path, so a user's evaluator module next
    to the command line imports in them too. While connecting to a cluster,
    what Ray's C++ core writes to stderr is held back and shown only if the
    connection succeeds: on a failure it logs one line per retry for 20 s
    and then raises an error that hides the cause; ours names it.

    Raises:
      ExecutorError: Ray cannot start, the address cannot be reached, or the
        cluster refuses this process (token authentication).
    """
    import ray

    cluster = bool(address) and address != "auto"
    if cluster:
        _check_reachable(address)
    env_vars = {"PYTHONPATH": os.pathsep.join(p for p in [os.getcwd(), *sys.path] if p)}
    env_vars["TF_CPP_MIN_LOG_LEVEL"] = os.environ.get("TF_CPP_MIN_LOG_LEVEL", DEFAULT_TF_LOG_LEVEL)
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": "ERROR",
        "runtime_env": {"env_vars": env_vars},
    }
    try:
        with _stderr_held_back() if cluster else contextlib.nullcontext():
            if cluster and not address.startswith("ray://"):
                _check_authentication(address)
            # No address: a new local Ray, as documented, even where RAY_ADDRESS is set or a ``ray start``
            # cluster runs on this machine (Ray's own default would join those; ``auto`` still does).
            ray.init(address=address or "local", **kwargs)
    except ExecutorError:
        raise
    except Exception as e:  # noqa: BLE001 - Ray raises many types here; the user needs one line
        if _caused_by_authentication(e):
            raise ExecutorError(_authentication_message(address)) from None
        where = f"the Ray cluster at {address!r}" if address else "a local Ray"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExecutorError(f"cannot start or reach {where}: {first}") from None


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fails fast when nothing listens at a Ray address (Ray itself retries for minutes)."""
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ExecutorError(f"--ray_address={address!r}: expected HOST:PORT (or ray://HOST:PORT, or auto)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ExecutorError(f"cannot reach the Ray cluster at {address!r}: {e.strerror or e}") from None


@contextlib.contextmanager
def _stderr_held_back():
    """Points file descriptor 2 at a temporary file; replays it only if the block succeeds."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        succeeded = False
        try:
            yield
            succeeded = True
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if succeeded:
                held.seek(0)
                os.write(2, held.read())


def _token_mode() -> bool:
    return os.environ.get("RAY_AUTH_MODE", "").strip().lower() == "token"


def _token_source() -> str | None:
    """Where Ray reads this process's token from, in Ray's order, or None."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return f"RAY_AUTH_TOKEN_PATH={os.environ['RAY_AUTH_TOKEN_PATH']}"
    default = os.path.expanduser(os.path.join("~", ".ray", "auth_token"))
    return default if os.path.isfile(default) else None


def _check_authentication(address: str) -> None:
    """Asks the cluster's GCS once whether it accepts this process.

    ``ray.init`` retries an authentication failure for 20 s and then reports
    "Failed to connect"; one GCS client answers in a fraction of a second.
    Anything but an authentication failure is left to ``ray.init`` to report.
    An unreadable RAY_AUTH_TOKEN_PATH is refused first: Ray 2.60 aborts the
    process on one (a failed C++ check), as it does with no token at all.
    """
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if _token_mode() and path and not os.environ.get("RAY_AUTH_TOKEN"):
        try:
            with open(path) as f:
                problem = "" if f.read().strip() else "the file is empty"
        except OSError as e:
            problem = e.strerror or str(e)
        if problem:
            raise ExecutorError(
                f"RAY_AUTH_TOKEN_PATH={path}: {problem}; it must name a file holding the cluster's token"
            )
    if _token_mode() and _token_source() is None:
        return  # ray.init refuses this itself, without aborting
    from ray._raylet import GcsClient
    from ray.exceptions import AuthenticationError

    try:
        GcsClient(address=address)
    except AuthenticationError:
        raise ExecutorError(_authentication_message(address)) from None
    except Exception:  # noqa: BLE001 - not ours to word: ray.init says it next
        pass


def _caused_by_authentication(e: BaseException | None) -> bool:
    from ray.exceptions import AuthenticationError

    for _ in range(10):  # ray.init wraps the cause in a ConnectionError
        if e is None or isinstance(e, AuthenticationError) or "InvalidAuthToken" in str(e):
            return e is not None
        e = e.__cause__ or e.__context__
    return False


def _authentication_message(address: str | None) -> str:
    where = f"the Ray cluster at {address!r}"
    how = (
        "in RAY_AUTH_TOKEN, in a file named by RAY_AUTH_TOKEN_PATH, or in ~/.ray/auth_token "
        "(`ray get-auth-token` on a node of the cluster prints it)"
    )
    if not _token_mode():
        return f"{where} requires token authentication: set RAY_AUTH_MODE=token and give the cluster's token {how}"
    source = _token_source()
    if source is None:
        return f"RAY_AUTH_MODE=token but no token is set for {where}: give the cluster's token {how}"
    return f"{where} refused the authentication token from {source}: give the cluster's token {how}"
