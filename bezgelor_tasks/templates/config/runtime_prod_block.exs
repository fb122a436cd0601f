@{ begin }
if config_env() == :prod do
@{% if required %}
  # Required: the release refuses to boot without them, naming the missing one.
@{% for r in required %}
  @{ r.name } =
    System.get_env("@{ r.var }") ||
      raise """
      environment variable @{ r.var } is missing.
      @{ r.how }
      """
@{% if not loop.last %}

@{% endif %}
@{% endfor %}


@{% endif %}
@{% if vault %}
  config :@{ portal_app }, @{ vault },
    ciphers: [
      default: {Cloak.Ciphers.AES.GCM, tag: "AES.GCM.V1", key: Base.decode64!(cloak_key)}
    ]

@{% endif %}
@{% if read_host %}
  host = System.get_env("PHX_HOST") || "@{ hostname }"
@{% endif %}
@{% if read_port %}
  port = String.to_integer(System.get_env("PORT") || "@{ portal_port }")
@{% endif %}
@{% if endpoint_opts %}
  # force_ssl lives in prod.exs (compile time), not here.
  config :@{ portal_app }, @{ endpoint },
    @{ endpoint_opts | join(",\n    ") }

@{% endif %}
@{% if repo_opts %}
  # Fly's private network is IPv6 only (.internal/.flycast have no A records): ECTO_IPV6=false turns
  # IPv6 off for a database reached over IPv4.
@{% for line in ssl_comment %}
  # @{ line }
@{% endfor %}
  # Fly's proxy closes idle connections: the pool pings them and keeps TCP keepalive on.
@{% if ipv6 %}
  socket_options = if System.get_env("ECTO_IPV6") in ~w(false 0), do: [], else: [:inet6]
@{% endif %}
  config :@{ db_app }, @{ repo },
    @{ repo_opts | join(",\n    ") }

@{% endif %}
@{% if world_address %}
  # The address the realm hands to game clients for the world server.
  config :@{ world_app }, public_address: world_public_address

@{% endif %}
@{% if boot_overrides %}
  # config/config.exs reads these when the image is built (inside the Docker build), where Fly's
  # [env] and secrets do not exist: read them again here, when the machine boots.
@{% for o in boot_overrides %}
  config :@{ o.app }@{ o.key_part },
    @{ o.opts | join(",\n    ") }

@{% endfor %}
@{% endif %}
end
@{ end }
