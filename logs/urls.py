from rest_framework.routers import DefaultRouter

from logs.views import LogViewSet

router = DefaultRouter()
# An optional trailing slash: POST /api/logs is served directly instead of
# being redirected, because a redirected POST loses its body in most clients.
router.trailing_slash = "/?"
router.register("logs", LogViewSet, basename="log")

urlpatterns = router.urls
