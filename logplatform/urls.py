from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularSwaggerView,
)
from rest_framework.routers import DefaultRouter

from alerts.urls import router as alerts_router
from analytics.views import overview
from logplatform.views import not_found
from logs.urls import router as logs_router

# One router for the whole API, so its root page lists every endpoint.
api = DefaultRouter()
# An optional trailing slash: POST /api/logs is served directly instead of
# being redirected, because a redirected POST loses its body in most clients.
api.trailing_slash = "/?"
for app_router in (logs_router, alerts_router):
    api.registry.extend(app_router.registry)

urlpatterns = [
    path("", include("ops.urls")),
    path("admin/", admin.site.urls),
    path("overview/", overview, name="overview"),
    path("api/stats/", include("analytics.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/", include(api.urls)),
    path("api-auth/", include("rest_framework.urls")),
]

handler404 = not_found
