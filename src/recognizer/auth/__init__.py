"""Who may do what: API keys and users (stored hashed, in the history database), scopes, login
sessions, rate limits.

A request's credentials become a :class:`~recognizer.auth.principal.Principal` (a key, a user
with a session cookie, or an anonymous address); each route declares the one scope it needs
(``recognizer.api.guard.require``), and a test fails any route that declares none.
"""
