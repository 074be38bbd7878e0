"""What "the database is unavailable" looks like from here: the errors to answer with "try again later"."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

# A server gone away or refusing (OperationalError, InterfaceError and the other DB-API errors), a pool
# with no connection to give (TimeoutError), a dropped connection, or a socket refused before the driver
# could wrap it.
DATABASE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    sa_exc.DBAPIError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
    ConnectionError,
)


def is_database_unavailable(error: BaseException) -> bool:
    return isinstance(error, DATABASE_UNAVAILABLE)
