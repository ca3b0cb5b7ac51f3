"""``hanzo-run view``: a local web app over a results database.

    server.py     binds the socket, prints the URL with its token, runs uvicorn
    app.py        the app factory: the guard around every page module's routes
    security.py   the guard: token, Host header, POST-only changes with a CSRF token, headers
    pages.py      the Jinja2 environment, number filters and ``render``
    runs.py       the Runs page; every page is a module of its own with its ``routes`` (and ``NAV``
                  when it belongs in the nav), listed in app.PAGES
    settings.py   the Providers page: key status, set (checked first) / remove / check keys, local servers
    settings_models.py   the Models page: a provider's models, refresh, the default model (as ``use``)

Pages are server-rendered HTML; the little JavaScript there is (live updates of a running
run, showing a key while it is typed) is a static file of the package. Every SQL statement lives in runner/store/.
"""
