from django.http import JsonResponse
from django.views.defaults import page_not_found


def not_found(request, exception):
    """Return a JSON 404 under /api/, as DRF does, and Django's page elsewhere.

    A URL that no route matches never reaches DRF, so without this clients
    would get an HTML page. /api/logs/1.5/ is one, because the router's id
    pattern excludes dots. Django uses this handler only when DEBUG is off.
    """
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
