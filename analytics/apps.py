from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        from django.contrib import admin

        # The admin index gains a link to the overview page. An app template
        # named admin/index.html would never be found, because the template
        # loaders search django.contrib.admin first and the project has no
        # template folder of its own.
        admin.site.index_template = "analytics/admin_index.html"
