"""Care Hub core: the canonical social-care model, the store, the pipeline and the API.

Nothing in this package knows a vendor or a protocol; the link folders
(`adapters/`, `gazetteer/`, `edrms/`, `finance_link/`, `health_link/`) plug into it.
"""

__version__ = "0.1.0"
