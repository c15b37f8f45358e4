# One image for every platform process. docker-compose.yml picks the process
# with `command:`; without one, a container runs the API.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=logplatform.settings

WORKDIR /app

# The dependencies are installed before the project is copied, so a code
# change reuses the cached install layer. Every pinned package has a wheel
# for CPython 3.11 on amd64 and arm64 Linux, so the image needs no compiler.
COPY requirements/base.txt requirements/base.txt
RUN pip install --no-cache-dir -r requirements/base.txt

RUN useradd --system --user-group --no-create-home --shell /usr/sbin/nologin \
    logplatform

COPY . .

# Collect the admin's and the browsable API's assets for WhiteNoise. This
# step imports the settings but opens no database or broker connection.
RUN DJANGO_DEBUG=false python manage.py collectstatic --noinput --verbosity 0

# The code and the collected assets stay owned by root, so the processes
# cannot change them.
USER logplatform

EXPOSE 8000 5555

CMD ["gunicorn", "logplatform.wsgi:application", "--bind", "0.0.0.0:8000", \
     "--workers", "2", "--threads", "4", "--access-logfile", "-"]
