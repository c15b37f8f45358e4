from django.urls import path

from analytics.views import StatsView

urlpatterns = [
    path("", StatsView.as_view(), name="stats"),
]
