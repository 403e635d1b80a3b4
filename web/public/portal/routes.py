"""The customer portal's routes, from every portal module (included by web/app.py)."""

from __future__ import annotations

from fastapi import APIRouter

from web.public.portal import access, contact, overview, paying, requests

router = APIRouter()
for module in (access, overview, paying, requests, contact):
    # The routes themselves (FastAPI 0.163 wraps an included router lazily, and web/auth/policy.py
    # keeps only APIRoute instances: included routers would vanish from both apps).
    router.routes.extend(module.router.routes)
