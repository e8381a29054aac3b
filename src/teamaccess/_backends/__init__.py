"""Storage backends; each module is imported only when used."""
