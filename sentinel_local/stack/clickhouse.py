"""ClickHouse server from Debian's `clickhouse-server`, run as a plain process on our data folder."""

from __future__ import annotations

from sentinel import settings
from sentinel_local.stack.runner import Service, apt_install, which


class ClickHouse(Service):
    name = "clickhouse"

    @property
    def port(self) -> int:  # type: ignore[override]
        return settings.CLICKHOUSE_PORT

    def installed(self) -> bool:
        return which("clickhouse-server") is not None

    def install(self) -> None:
        apt_install("clickhouse-server", "clickhouse-client")

    def prepare(self) -> None:
        for sub in ("data", "tmp", "user_files", "format_schemas", "logs"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        (self.home / "config.xml").write_text(f"""\
<yandex>
  <logger>
    <level>information</level>
    <log>{self.home}/logs/clickhouse-server.log</log>
    <errorlog>{self.home}/logs/clickhouse-server.err.log</errorlog>
    <size>100M</size>
    <count>3</count>
  </logger>
  <listen_host>{settings.HOST}</listen_host>
  <tcp_port>{settings.CLICKHOUSE_PORT}</tcp_port>
  <http_port>{settings.CLICKHOUSE_HTTP_PORT}</http_port>
  <path>{self.home}/data/</path>
  <tmp_path>{self.home}/tmp/</tmp_path>
  <user_files_path>{self.home}/user_files/</user_files_path>
  <format_schema_path>{self.home}/format_schemas/</format_schema_path>
  <users_config>{self.home}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
""")
        (self.home / "users.xml").write_text("""\
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <load_balancing>random</load_balancing>
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>::1</ip><ip>127.0.0.1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries><errors>0</errors><result_rows>0</result_rows>
        <read_rows>0</read_rows><execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
""")

    def argv(self) -> list[str]:
        return [which("clickhouse-server") or "clickhouse-server", f"--config-file={self.home}/config.xml"]

    def ready(self) -> bool:
        if not super().ready():
            return False
        from clickhouse_driver import Client

        try:
            Client(settings.CLICKHOUSE_HOST, port=settings.CLICKHOUSE_PORT, connect_timeout=2).execute("SELECT 1")
        except Exception:  # noqa: BLE001 - any failure means "not yet"
            return False
        return True

    def addresses(self) -> dict[str, str]:
        return {
            "native": f"{settings.HOST}:{settings.CLICKHOUSE_PORT}",
            "http": f"http://{settings.HOST}:{settings.CLICKHOUSE_HTTP_PORT}",
        }
