"""What appliance.httpd (the front and its server) relies on inside cheroot, beyond its public
API, is still there and still shaped as the front expects: an upgrade that changes one fails here,
by name, before a page stops answering. pyproject.toml bounds cheroot to the versions tested.
No socket: everything is read from cheroot's classes and sources."""

from __future__ import annotations

import inspect
from importlib.metadata import version

from cheroot import connections, makefile, server
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from appliance.httpd import server as our_server

#: The versions of cheroot this was tested against (keep in step with pyproject.toml).
TESTED = SpecifierSet(">=11.1,<12")


def source(function: object) -> str:
    return inspect.getsource(function)  # type: ignore[arg-type]


def test_the_installed_cheroot_is_one_the_front_was_tested_with() -> None:
    assert Version(version("cheroot")) in TESTED


def test_the_selector_loop_still_calls_what_the_front_overrides() -> None:
    run = source(vars(connections.ConnectionManager)["_run"])
    for call in (
        "self._from_server_socket(self.server.socket)",  # the front accepts
        "self.server.process_conn(new_conn)",
        "self.server.process_conn(conn)",  # our server: a Waiting goes to the front
        "self._expire(threshold=",  # the front forgets what cheroot expires
        "self._selector.select(",
    ):
        assert call in run, f"cheroot's ConnectionManager._run no longer does {call}"
    assert list(inspect.signature(vars(connections.ConnectionManager)["_expire"]).parameters) == [
        "self",
        "threshold",
    ]
    assert "self.server.timeout" in run  # the front's head budget works through it


def test_the_manager_keeps_its_selector_where_the_front_reads_it() -> None:
    init = source(connections.ConnectionManager.__init__)
    assert "self._selector = _ThreadsafeSelector()" in init
    for name in ("register", "unregister", "connections", "select", "close"):
        assert hasattr(connections._ThreadsafeSelector, name), name
    assert list(inspect.signature(connections.ConnectionManager.put).parameters) == [
        "self",
        "conn",
    ]


def test_the_server_makes_its_manager_in_prepare_and_dispatches_in_process_conn() -> None:
    assert "self._connections = connections.ConnectionManager(self)" in source(
        server.HTTPServer.prepare
    )
    assert "self.requests.put(conn)" in source(server.HTTPServer.process_conn)
    assert our_server._Server.prepare is not server.HTTPServer.prepare


def test_the_connection_still_has_what_the_front_uses() -> None:
    for name in ("close", "communicate"):
        assert callable(getattr(server.HTTPConnection, name)), name
    # a pipelined request after a keep-alive one: the front looks in cheroot's read buffer
    assert callable(vars(makefile.StreamReader)["has_data"])
