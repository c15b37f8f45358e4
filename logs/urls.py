from rest_framework.routers import SimpleRouter

from logs.views import LogViewSet, PatternViewSet

# Collected into the project's API router in logplatform/urls.py.
router = SimpleRouter()
router.register("logs", LogViewSet, basename="log")
router.register("patterns", PatternViewSet, basename="pattern")
