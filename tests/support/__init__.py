"""Helpers the tests share (stand-in clients, service worlds, tracker helpers, paths); fixtures live in the
conftest.py files, so a test takes them by name and never imports one."""
