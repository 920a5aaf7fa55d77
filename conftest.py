"""xentcheck: the conformance suite runs as a pytest plugin (``suites/plugin``; its options are the
``xentcheck`` group of ``pytest --help``)."""

pytest_plugins = ["suites.plugin"]
