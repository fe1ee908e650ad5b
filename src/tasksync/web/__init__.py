"""The review page, the Trello Power-Up and the webhook endpoints: one ASGI app on uvicorn.

``tasksync web`` serves it; ``tasksync serve`` too when ``[web] enabled = true``. See ``docs/web.md``.
"""
