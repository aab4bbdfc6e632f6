# Kafka for deploy/local (sourced by local.sh): placeholder until the broker lands.
kafka_up() { :; }
kafka_down() { :; }
kafka_status() { log "kafka     not yet provided"; }
kafka_reset() { :; }
