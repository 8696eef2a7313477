"""The optional Ray adapters: the HTTP API on Ray Serve (``serve``) and folder jobs on Ray Data.

Ray is the ``recognizer[ray]`` extra, not a base dependency, so importing this package (or any of
its modules) never imports ray: each adapter imports it when it is used, and says how to install it
when it is missing.
"""
