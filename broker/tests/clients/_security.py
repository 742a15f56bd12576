"""Security options shared by the secure_* drivers: TLS files and SASL credentials, turned
into each client's own configuration names."""


def add_options(p):
    """Adds --security-protocol, --ca, --cert, --key, --mechanism, --username, --password."""
    p.add_argument("--security-protocol", default="PLAINTEXT",
                   choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
    p.add_argument("--ca", default=None, help="PEM file of the CA the broker's cert chains to")
    p.add_argument("--cert", default=None, help="PEM client certificate (mutual TLS)")
    p.add_argument("--key", default=None, help="PEM client key (mutual TLS)")
    p.add_argument("--mechanism", default=None, help="SASL mechanism")
    p.add_argument("--username", default=None)
    p.add_argument("--password", default=None)
    return p


def librdkafka(args):
    """The options as librdkafka (confluent-kafka) names them."""
    conf = {"security.protocol": args.security_protocol}
    if args.ca:
        conf["ssl.ca.location"] = args.ca
    if args.cert:
        conf["ssl.certificate.location"] = args.cert
    if args.key:
        conf["ssl.key.location"] = args.key
    if args.mechanism:
        conf["sasl.mechanism"] = args.mechanism
        conf["sasl.username"] = args.username
        conf["sasl.password"] = args.password
    return conf


def kafka_python(args):
    """The options as kafka-python names them."""
    conf = {"security_protocol": args.security_protocol}
    if args.ca:
        conf["ssl_cafile"] = args.ca
    if args.cert:
        conf["ssl_certfile"] = args.cert
    if args.key:
        conf["ssl_keyfile"] = args.key
    if args.mechanism:
        conf["sasl_mechanism"] = args.mechanism
        conf["sasl_plain_username"] = args.username
        conf["sasl_plain_password"] = args.password
    return conf
