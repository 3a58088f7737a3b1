"""The answer to a request whose database connection failed under it (terminated by an administrator or a failover,
PostgreSQL restarting or down): a 503 that says what became of the change, instead of the generic 500 page.

Django calls `server_error` (trial/urls.py's handler500) for any exception a view or middleware did not handle, with
that exception still being handled, so it can tell a database connection failure (OperationalError, InterfaceError)
from a bug. A failure inside a service's transaction (every service writes in one `transaction.atomic()`) is rolled
back by PostgreSQL when the connection ends: nothing was saved, and asking again is safe (randomising again returns
the allocation already made). A failure after a commit (while the next page was made) left the change saved:
NoteWhatWasCommitted, the outermost middleware, notes whether a write of the request was committed, and only when
none was does the answer say that nothing was saved. Django closes the broken connection when the request ends,
so the worker's next request opens a new one.

The page needs neither the database nor the session (no base template, no context processors); an address under
/api/ gets a problem detail (RFC 9457), as the API's other errors do (api/problems.py, which trial/ cannot import).
"""

import sys
from collections.abc import Callable

from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.template import loader
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.defaults import server_error as default_server_error

DATABASE_INTERRUPTED = "urn:family-partner:problem:database-interrupted"
# Seconds a client may wait before trying again: about as long as a failover or a restart takes.
RETRY_AFTER_SECONDS = 5


WRITES = ("INSERT", "UPDATE", "DELETE")


class NoteWhatWasCommitted:
    """Marks a request `database_committed` once a write of it is committed, so that the 503 promises "nothing was
    saved" only when that is true: a connection lost after a service committed (while the next page was being
    made) left the change saved. A write inside a transaction asks to be told of its commit (transaction.on_commit,
    discarded on a rollback); writes in autocommit are bookkeeping (a token's last use) and not counted. Outermost
    middleware, so that it sees every other middleware's writes too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        def committed() -> None:
            request.database_committed = True  # type: ignore[attr-defined]

        def note_writes(execute, sql, params, many, context):
            result = execute(sql, params, many, context)
            # Only a transaction's writes (every service's): a write in autocommit is bookkeeping (a token's
            # last use), not the change the user asked for.
            if connection.in_atomic_block and sql.lstrip().upper().startswith(WRITES):
                transaction.on_commit(committed)
            return result

        with connection.execute_wrapper(note_writes):
            return self.get_response(request)


def is_database_interruption(error: BaseException | None) -> bool:
    """Whether the request failed because its database connection did: an OperationalError or InterfaceError, or
    any other database error once the connection is gone (psycopg2 raises a plain DatabaseError for some ways a
    connection dies, and Django a ProgrammingError for a query after it was closed in a transaction), also where
    that error is the cause or context of the one that reached Django."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OperationalError | InterfaceError):
            return True
        # Gone: Django closed it after the failure (None, on every backend), or it refuses a `SELECT 1` (is_usable,
        # asked only after a database error, when no transaction is open any more).
        if isinstance(error, DatabaseError) and (connection.connection is None or not connection.is_usable()):
            return True
        error = error.__cause__ or error.__context__
    return False


def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    """handler500: the 503 below for a database connection failure, Django's 500 page for anything else."""
    if is_database_interruption(sys.exc_info()[1]):
        return database_interrupted(request)
    return default_server_error(request, template_name)


def database_interrupted(request: HttpRequest) -> HttpResponse:
    if getattr(request, "database_committed", False):
        detail = _(
            "The database connection was interrupted after your change was saved. Open the page again and check it "
            "before you enter anything again."
        )
    else:
        detail = _("The database connection was interrupted. Nothing was saved; please try again.")
    response: HttpResponse
    if request.path.startswith("/api/"):
        body = {
            "type": DATABASE_INTERRUPTED,
            "title": "Service Unavailable",
            "status": 503,
            "detail": detail,
            "instance": request.path,
        }
        response = JsonResponse(body, status=503, content_type="application/problem+json")
    else:
        page = loader.get_template("503_database.html").render({"detail": detail, "language": get_language()})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
