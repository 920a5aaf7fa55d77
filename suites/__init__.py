"""The conformance suites (``test_*.py``) and the pytest wiring that runs them (``plugin/``)."""
