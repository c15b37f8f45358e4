from rest_framework.routers import DefaultRouter

from logs.views import LogViewSet

# "/?" makes the trailing slash optional, so POST /api/logs is served
# directly instead of being redirected (a redirect would drop the body).
router = DefaultRouter(trailing_slash="/?")
router.register("logs", LogViewSet, basename="log")

urlpatterns = router.urls
