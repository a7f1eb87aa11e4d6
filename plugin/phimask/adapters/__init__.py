"""Wire protocols <-> documents for the core. Adapters translate; the core decides."""
