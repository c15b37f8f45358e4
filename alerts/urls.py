from rest_framework.routers import SimpleRouter

from alerts.views import (
    AlertRuleViewSet,
    AlertViewSet,
    NotificationChannelViewSet,
    NotificationDeliveryViewSet,
)

# Collected into the project's API router in logplatform/urls.py.
router = SimpleRouter()
router.register("rules", AlertRuleViewSet, basename="alertrule")
router.register("channels", NotificationChannelViewSet, basename="channel")
router.register("alerts", AlertViewSet, basename="alert")
router.register("deliveries", NotificationDeliveryViewSet, basename="delivery")
