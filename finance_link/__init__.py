"""The finance link: approved care services become commitment lines the finance system trusts.

Commitments are derived from canonical Commitment and CarePlan change events
(``commitments``), pulled by the finance system through a cursor feed (``feed``,
``api``) or pushed to it by SOAP through the outbox (``soap``); actual spend
comes back by API or CSV drop (``actuals``). ``simulator`` is an ERP's
commitment import on loopback. See docs/finance.md.
"""
