from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("logs", "0006_pattern"),
    ]

    operations = [
        # The column's default calls nextval() on this sequence, so it must
        # exist before the column.
        migrations.RunSQL(
            "CREATE SEQUENCE logs_pattern_revision AS bigint",
            "DROP SEQUENCE logs_pattern_revision",
        ),
        migrations.AddField(
            model_name="pattern",
            name="revision",
            field=models.BigIntegerField(
                db_default=models.Func(
                    models.Value("logs_pattern_revision"),
                    function="nextval",
                    output_field=models.BigIntegerField(),
                ),
                editable=False,
                help_text="Taken from a sequence when the pattern is created and "
                "each time its template changes.",
            ),
        ),
        migrations.AddIndex(
            model_name="pattern",
            index=models.Index(
                fields=["service_name", "revision"], name="pattern_service_revision"
            ),
        ),
    ]
