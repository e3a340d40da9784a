"""The corporate gazetteer link: DTF 7.3 feeds in, UPRNs out.

Reader and loader (`dtf`, `load`), BS7666 address (`address`), normaliser and
matcher (`normalise`, `matcher`), feed pickup (`pickup`), CLI (`cli`), API
(`api`, `lookup`) and the synthetic town (`simulator`). See docs/gazetteer.md.
"""
