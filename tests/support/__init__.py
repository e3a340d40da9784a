"""Helpers shared by the suite's test packages: import them from here, never from another test module or a
conftest (tests/integration/test_test_imports.py holds the suite to it). Fixtures stay in conftest files.

One module per subject: ``pages`` (an app served on loopback, headless Chromium), ``synthetic`` and
``record_hub`` (the synthetic council and the shared record's app), ``persons`` and ``two_sources``
(identity), ``delivery``, ``finance``, ``edrms``, ``health``, ``transitions`` and ``gazetteer`` (each
link's hub and data), ``pipeline``, ``small_legacy`` and ``mappings`` (sources and mappings), ``cli``
(the real ``carehub`` command), ``postgres`` (backends and a private cluster), ``processes``, ``ports``,
``waiting`` (the one ``wait_for``) and ``clock`` (a clock a test steps on by hand).
"""
