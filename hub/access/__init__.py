"""Access to the shared record: who the caller is (tokens) and what they may see (policy, consent, seals)."""
