"""Authorization: the resource server (tokens, principals, scopes) and the OAuth client."""
