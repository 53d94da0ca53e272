"""Partner services: client-credential tokens, scopes, and what each partner may see."""
