from rest_framework.pagination import CursorPagination, PageNumberPagination


class LogCursorPagination(CursorPagination):
    """Newest first; pages follow a cursor, so no page counts the table."""

    ordering = ("-timestamp", "-id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class PatternPagination(PageNumberPagination):
    """Numbered pages: patterns are few next to entries, so counting them is cheap."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
