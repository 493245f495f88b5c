#include "node.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "actor_system.pb-c.h"
#include "cluster.pb-c.h"
#include "curve.h"
#include "log.h"
#include "scoring.h"

/* The version byte of frame 1 (Protos/README.md, "Framing"). */
#define PROTOCOL_VERSION 1
/* The key the node's actor checks in under, and the actor's name on this node. */
#define VERIFIERS_KEY "verifiers"
#define ACTOR_NAME "verifier"
/* Messages read from one socket per loop turn, so no socket starves the others. */
#define MAX_READS_PER_TURN 256
/* Scoring runs in slices of about this long between turns of the socket loop. */
#define SCORING_SLICE_MS 10
/* scoreGroups calls waiting at most (the coordinator sends two at a time); more are refused. */
#define MAX_QUEUED_CALLS 256

static bool within_allocation_budget(const uint8_t *data, size_t length, size_t *limit);

/* Where a message came from and where its answer goes: a routing id on the ROUTER, or the DEALER. */
typedef struct {
    bool inbound;
    uint8_t routing_id[255];
    size_t routing_id_length;
} route_t;

/* One association's state (Protos/README.md, "Association"). */
typedef struct connection {
    route_t route;
    bool associated;
    char remote_endpoint[512];
    uint64_t remote_incarnation;
    int64_t last_heard_ms;
    int64_t last_sent_ms;
    struct connection *next;
} connection_t;

/* A Verifier.scoreGroups call being scored, group by group. */
typedef struct call {
    route_t route;
    uint64_t call_id;
    Selfimprove__V1__ScoreBatch *batch;
    Selfimprove__V1__ScoreReply **groups;
    size_t scored;
    int64_t next_group_ms;
    struct call *next;
} call_t;

typedef struct {
    const options_t *options;
    void *context;
    void *router;
    void *dealer;
    curve_t curve;
    bool curve_on;
    char endpoint[512];
    uint64_t incarnation;
    connection_t outbound;          /* the DEALER's association (with the coordinator) */
    connection_t *inbound;          /* associations on the ROUTER */
    size_t inbound_count;
    call_t *calls;                  /* in arrival order; the first is scored */
    size_t queued_calls;
    uint64_t heartbeat_sequence;
    int64_t last_tick_ms;
    bool finished;
    int exit_status;
    uint64_t frames_rejected, calls_served, groups_scored, calls_cancelled;
} node_t;

static int64_t now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static const char *describe(const node_t *node, const route_t *route, char *buffer, size_t size) {
    if (!route->inbound) {
        snprintf(buffer, size, "%s", node->options->coordinator ? node->options->coordinator : "outbound");
        return buffer;
    }
    for (const connection_t *c = node->inbound; c != NULL; c = c->next) {
        if (c->route.routing_id_length == route->routing_id_length && memcmp(c->route.routing_id, route->routing_id, route->routing_id_length) == 0 &&
            c->remote_endpoint[0] != '\0') {
            snprintf(buffer, size, "%s", c->remote_endpoint);
            return buffer;
        }
    }
    size_t used = (size_t)snprintf(buffer, size, "unidentified connection ");
    for (size_t i = 0; i < route->routing_id_length && used + 3 < size; i++) used += (size_t)snprintf(buffer + used, size - used, "%02x", route->routing_id[i]);
    return buffer;
}

// MARK: - Sending

/* Sends one Envelope as [version][envelope] (after the routing id on the ROUTER). A peer
 * that is gone or does not read is logged, never fatal. */
static void send_envelope(node_t *node, const route_t *route, const Selfimprove__V1__Envelope *envelope) {
    size_t length = selfimprove__v1__envelope__get_packed_size(envelope);
    uint8_t *bytes = malloc(length ? length : 1);
    if (bytes == NULL) {
        log_line(LOG_ERROR, "Out of memory packing a message");
        return;
    }
    selfimprove__v1__envelope__pack(envelope, bytes);
    void *socket = route->inbound ? node->router : node->dealer;
    const uint8_t version = PROTOCOL_VERSION;
    int sent = 0;
    if (route->inbound) sent = zmq_send(socket, route->routing_id, route->routing_id_length, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (sent >= 0) sent = zmq_send(socket, &version, 1, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (sent >= 0) sent = zmq_send(socket, bytes, length, ZMQ_DONTWAIT);
    if (sent < 0) {
        char peer[600];
        int error = zmq_errno();
        log_line(error == EHOSTUNREACH ? LOG_DEBUG : LOG_WARNING, "Dropping a message to a peer that %s peer=\"%s\" error=\"%s\"",
                 error == EHOSTUNREACH ? "has disconnected" : "does not read it", describe(node, route, peer, sizeof peer), zmq_strerror(error));
    }
    free(bytes);
}

static void self_identity(const node_t *node, Selfimprove__V1__NodeIdentity *identity) {
    selfimprove__v1__node_identity__init(identity);
    identity->endpoint = (char *)node->endpoint;
    identity->incarnation = node->incarnation;
}

static void send_handshake(node_t *node) {
    Selfimprove__V1__NodeIdentity from;
    self_identity(node, &from);
    Selfimprove__V1__Handshake handshake = SELFIMPROVE__V1__HANDSHAKE__INIT;
    handshake.protocol_version = PROTOCOL_VERSION;
    handshake.from = &from;
    Selfimprove__V1__Envelope envelope = SELFIMPROVE__V1__ENVELOPE__INIT;
    envelope.body_case = SELFIMPROVE__V1__ENVELOPE__BODY_HANDSHAKE;
    envelope.handshake = &handshake;
    send_envelope(node, &node->outbound.route, &envelope);
    node->outbound.last_sent_ms = now_ms();
}

/* The node's receptionist snapshot: its verifier under "verifiers", or nothing (before a
 * clean shutdown). */
static void send_snapshot(node_t *node, const route_t *route, bool empty) {
    Selfimprove__V1__NodeIdentity identity;
    self_identity(node, &identity);
    Selfimprove__V1__ActorIdentity actor = SELFIMPROVE__V1__ACTOR_IDENTITY__INIT;
    actor.node = &identity;
    actor.name = ACTOR_NAME;
    Selfimprove__V1__Registration registration = SELFIMPROVE__V1__REGISTRATION__INIT;
    registration.key = VERIFIERS_KEY;
    registration.actor = &actor;
    Selfimprove__V1__Registration *added[] = {&registration};
    Selfimprove__V1__ReceptionistUpdate update = SELFIMPROVE__V1__RECEPTIONIST_UPDATE__INIT;
    update.snapshot = 1;
    update.added = empty ? NULL : added;
    update.n_added = empty ? 0 : 1;
    Selfimprove__V1__Envelope envelope = SELFIMPROVE__V1__ENVELOPE__INIT;
    envelope.body_case = SELFIMPROVE__V1__ENVELOPE__BODY_RECEPTIONIST_UPDATE;
    envelope.receptionist_update = &update;
    send_envelope(node, route, &envelope);
}

static void send_heartbeat(node_t *node, connection_t *connection) {
    Selfimprove__V1__Heartbeat heartbeat = SELFIMPROVE__V1__HEARTBEAT__INIT;
    heartbeat.sequence = ++node->heartbeat_sequence;
    Selfimprove__V1__Envelope envelope = SELFIMPROVE__V1__ENVELOPE__INIT;
    envelope.body_case = SELFIMPROVE__V1__ENVELOPE__BODY_HEARTBEAT;
    envelope.heartbeat = &heartbeat;
    send_envelope(node, &connection->route, &envelope);
    connection->last_sent_ms = now_ms();
}

static void send_association_unknown(node_t *node, const route_t *route) {
    Selfimprove__V1__AssociationUnknown unknown = SELFIMPROVE__V1__ASSOCIATION_UNKNOWN__INIT;
    Selfimprove__V1__Envelope envelope = SELFIMPROVE__V1__ENVELOPE__INIT;
    envelope.body_case = SELFIMPROVE__V1__ENVELOPE__BODY_ASSOCIATION_UNKNOWN;
    envelope.association_unknown = &unknown;
    send_envelope(node, route, &envelope);
}

static void send_reply(node_t *node, const route_t *route, uint64_t call_id, uint8_t *result, size_t length) {
    Selfimprove__V1__Reply reply = SELFIMPROVE__V1__REPLY__INIT;
    reply.call_id = call_id;
    reply.result.data = result;
    reply.result.len = length;
    Selfimprove__V1__Envelope envelope = SELFIMPROVE__V1__ENVELOPE__INIT;
    envelope.body_case = SELFIMPROVE__V1__ENVELOPE__BODY_REPLY;
    envelope.reply = &reply;
    send_envelope(node, route, &envelope);
    node->calls_served++;
}

static void send_error(node_t *node, const route_t *route, uint64_t call_id, const char *code, const char *type_name, const char *message) {
    Selfimprove__V1__ErrorReply error = SELFIMPROVE__V1__ERROR_REPLY__INIT;
    error.call_id = call_id;
    error.code = (char *)code;
    error.type_name = (char *)type_name;
    error.message = (char *)message;
    Selfimprove__V1__Envelope envelope = SELFIMPROVE__V1__ENVELOPE__INIT;
    envelope.body_case = SELFIMPROVE__V1__ENVELOPE__BODY_ERROR;
    envelope.error = &error;
    send_envelope(node, route, &envelope);
    node->calls_served++;
    char peer[600];
    log_line(LOG_DEBUG, "Answered a call with an error call.id=%" PRIu64 " code=%s message=\"%s\" peer=\"%s\"", call_id, code, message,
             describe(node, route, peer, sizeof peer));
}

// MARK: - Associations

static bool same_route(const route_t *a, const route_t *b) {
    return a->inbound == b->inbound && a->routing_id_length == b->routing_id_length && memcmp(a->routing_id, b->routing_id, a->routing_id_length) == 0;
}

static connection_t *find_connection(node_t *node, const route_t *route) {
    if (!route->inbound) return &node->outbound;
    for (connection_t *c = node->inbound; c != NULL; c = c->next) {
        if (same_route(&c->route, route)) return c;
    }
    return NULL;
}

/* The inbound connection of `route`, made if new (NULL only when out of memory). A full table
 * makes room by forgetting the connection heard from longest ago, unassociated ones first: a
 * forgotten peer that speaks again is answered AssociationUnknown and handshakes anew, so a
 * flood of handshakes cannot lock real peers out. */
static connection_t *connection_for(node_t *node, const route_t *route) {
    connection_t *found = find_connection(node, route);
    if (found != NULL) return found;
    if (node->inbound_count >= (size_t)node->options->max_associations) {
        connection_t **oldest = NULL;
        for (connection_t **c = &node->inbound; *c != NULL; c = &(*c)->next) {
            bool older = oldest == NULL || (!(*c)->associated && (*oldest)->associated) ||
                         ((*c)->associated == (*oldest)->associated && (*c)->last_heard_ms < (*oldest)->last_heard_ms);
            if (older) oldest = c;
        }
        connection_t *gone = *oldest;
        *oldest = gone->next;
        free(gone);
        node->inbound_count--;
    }
    connection_t *made = calloc(1, sizeof *made);
    if (made == NULL) return NULL;
    made->route = *route;
    made->last_heard_ms = now_ms();
    made->next = node->inbound;
    node->inbound = made;
    node->inbound_count++;
    return made;
}

static void declare_down(node_t *node, connection_t *connection, const char *reason) {
    connection->associated = false;
    log_line(LOG_WARNING, "Node down peer=\"%s#%016" PRIx64 "\" reason=\"%s\"", connection->remote_endpoint, connection->remote_incarnation, reason);
    (void)node;
}

/* Any message is a sign of life. Traffic on an inbound connection without a live association
 * is answered with AssociationUnknown, so the peer handshakes again. */
static void note_heard(node_t *node, const route_t *route) {
    connection_t *connection = find_connection(node, route);
    if (connection != NULL && connection->associated) {
        connection->last_heard_ms = now_ms();
        return;
    }
    if (route->inbound) send_association_unknown(node, route);
}

static bool valid_identity(const Selfimprove__V1__NodeIdentity *identity, const char **problem) {
    if (identity == NULL) *problem = "NodeIdentity is missing";
    else if (identity->endpoint == NULL || identity->endpoint[0] == '\0') *problem = "NodeIdentity.endpoint is empty";
    else if (strlen(identity->endpoint) >= 512) *problem = "NodeIdentity.endpoint is longer than 511 bytes";
    else if (identity->incarnation == 0) *problem = "NodeIdentity.incarnation is zero";
    else return true;
    return false;
}

static void associate(node_t *node, connection_t *connection, const Selfimprove__V1__NodeIdentity *remote) {
    bool restarted = connection->remote_incarnation != 0 && connection->remote_incarnation != remote->incarnation;
    if (restarted && connection->associated) declare_down(node, connection, "restarted with a new incarnation");
    bool was_up = connection->associated && strcmp(connection->remote_endpoint, remote->endpoint) == 0;
    snprintf(connection->remote_endpoint, sizeof connection->remote_endpoint, "%s", remote->endpoint);
    connection->remote_incarnation = remote->incarnation;
    connection->associated = true;
    connection->last_heard_ms = now_ms();
    if (!was_up) log_line(LOG_INFO, "Node up peer=\"%s#%016" PRIx64 "\"", remote->endpoint, remote->incarnation);
}

static void handle_handshake(node_t *node, const route_t *route, const Selfimprove__V1__Handshake *handshake) {
    char peer[600];
    if (!route->inbound) {
        log_line(LOG_WARNING, "Handshake arrived on an outbound connection peer=\"%s\"", describe(node, route, peer, sizeof peer));
        return;
    }
    if (handshake->protocol_version != PROTOCOL_VERSION) {
        char reason[160];
        snprintf(reason, sizeof reason, "protocol version %u is not supported; this node speaks %d", handshake->protocol_version, PROTOCOL_VERSION);
        Selfimprove__V1__HandshakeReject reject = SELFIMPROVE__V1__HANDSHAKE_REJECT__INIT;
        reject.reason = reason;
        Selfimprove__V1__Envelope envelope = SELFIMPROVE__V1__ENVELOPE__INIT;
        envelope.body_case = SELFIMPROVE__V1__ENVELOPE__BODY_HANDSHAKE_REJECT;
        envelope.handshake_reject = &reject;
        send_envelope(node, route, &envelope);
        log_line(LOG_WARNING, "Refused handshake peer=\"%s\" reason=\"%s\"", describe(node, route, peer, sizeof peer), reason);
        return;
    }
    const char *problem = NULL;
    if (!valid_identity(handshake->from, &problem)) {
        node->frames_rejected++;
        log_line(LOG_WARNING, "Rejected frame from peer peer=\"%s\" reason=\"bad handshake: %s\"", describe(node, route, peer, sizeof peer), problem);
        return;
    }
    connection_t *connection = connection_for(node, route);
    if (connection == NULL) {
        log_line(LOG_ERROR, "Out of memory for an association peer=\"%s\"", handshake->from->endpoint);
        return;
    }
    associate(node, connection, handshake->from);
    Selfimprove__V1__NodeIdentity from;
    self_identity(node, &from);
    Selfimprove__V1__HandshakeAccept accept = SELFIMPROVE__V1__HANDSHAKE_ACCEPT__INIT;
    accept.from = &from;
    Selfimprove__V1__Envelope envelope = SELFIMPROVE__V1__ENVELOPE__INIT;
    envelope.body_case = SELFIMPROVE__V1__ENVELOPE__BODY_HANDSHAKE_ACCEPT;
    envelope.handshake_accept = &accept;
    send_envelope(node, route, &envelope);
    send_snapshot(node, route, false);
    connection->last_sent_ms = now_ms();
}

static void handle_handshake_accept(node_t *node, const route_t *route, const Selfimprove__V1__HandshakeAccept *accept) {
    char peer[600];
    if (route->inbound) {
        log_line(LOG_WARNING, "Handshake answer arrived on an inbound connection peer=\"%s\"", describe(node, route, peer, sizeof peer));
        return;
    }
    const char *problem = NULL;
    if (!valid_identity(accept->from, &problem)) {
        node->frames_rejected++;
        log_line(LOG_WARNING, "Rejected frame from peer peer=\"%s\" reason=\"bad handshake answer: %s\"", describe(node, route, peer, sizeof peer), problem);
        return;
    }
    bool first = node->outbound.remote_incarnation == 0;
    associate(node, &node->outbound, accept->from);
    send_snapshot(node, route, false);
    if (first) log_line(LOG_INFO, "Joined the coordinator coordinator=\"%s\"", node->options->coordinator);
}

// MARK: - Calls

static void free_call(call_t *call) {
    if (call->groups != NULL) {
        for (size_t i = 0; i < call->scored; i++) scoring_free_group(call->groups[i]);
        free(call->groups);
    }
    if (call->batch != NULL) selfimprove__v1__score_batch__free_unpacked(call->batch, NULL);
    free(call);
}

/* Checks a call in the order the Swift nodes do (target, incarnation, method, arity, actor)
 * and answers it, or queues a scoreGroups call for the scoring slices. */
static void handle_call(node_t *node, const route_t *route, const Selfimprove__V1__Call *call) {
    char message[1024];
    const Selfimprove__V1__ActorIdentity *target = call->target;
    const char *problem = NULL;
    if (target == NULL || target->node == NULL) problem = "ActorIdentity.node is missing";
    else if (target->name == NULL || target->name[0] == '\0') problem = "ActorIdentity.name is empty";
    if (problem != NULL || !valid_identity(target->node, &problem)) {
        snprintf(message, sizeof message, "bad call target: %s", problem);
        send_error(node, route, call->call_id, "protocol.invalid", "", message);
        return;
    }
    if (target->node->incarnation != node->incarnation) {
        snprintf(message, sizeof message, "%.200s#%016" PRIx64 "/%.200s belongs to another incarnation; this node is %.200s#%016" PRIx64, target->node->endpoint,
                 target->node->incarnation, target->name, node->endpoint, node->incarnation);
        send_error(node, route, call->call_id, "node.incarnation_mismatch", "", message);
        return;
    }
    const char *method = call->method ? call->method : "";
    size_t arity;
    if (strcmp(method, "Verifier.scoreGroups") == 0) arity = 1;
    else if (strcmp(method, "Verifier.finish") == 0) arity = 0;
    else {
        snprintf(message, sizeof message, "no method '%.200s' is registered on %s", method, node->options->name);
        send_error(node, route, call->call_id, "method.unknown", "", message);
        return;
    }
    if (call->n_arguments != arity) {
        snprintf(message, sizeof message, "%s takes %zu argument(s), got %zu", method, arity, call->n_arguments);
        send_error(node, route, call->call_id, "arguments.invalid", "", message);
        return;
    }
    if (strcmp(target->name, ACTOR_NAME) != 0) {
        snprintf(message, sizeof message, "no actor '%.200s' on %s", target->name, node->options->name);
        send_error(node, route, call->call_id, "actor.not_found", "", message);
        return;
    }
    if (arity == 0 && route->inbound) {
        /* Only the coordinator ends the node, and it calls over the connection this node opened
           to it; a finish from a connection made to this node is refused, as the Swift nodes do. */
        snprintf(message, sizeof message, "Verifier.finish is the coordinator's call, and it came over a connection made to %s, not the one to the coordinator",
                 node->options->name);
        log_line(LOG_WARNING, "Refused a call only the coordinator may make method=Verifier.finish");
        send_error(node, route, call->call_id, "remote.threw", "Unauthorized", message);
        return;
    }
    if (arity == 0) {
        /* Verifier.finish: the run is over. Answer, then stop. */
        send_reply(node, route, call->call_id, NULL, 0);
        log_line(LOG_INFO, "The coordinator says the run is over calls=%" PRIu64 " groups=%" PRIu64, node->calls_served, node->groups_scored);
        node->finished = true;
        return;
    }
    if (node->queued_calls >= MAX_QUEUED_CALLS) {
        snprintf(message, sizeof message, "%d calls are waiting on %s; try another verifier", MAX_QUEUED_CALLS, node->options->name);
        send_error(node, route, call->call_id, "remote.threw", "Overloaded", message);
        return;
    }
    Selfimprove__V1__ScoreBatch *batch = selfimprove__v1__score_batch__unpack(NULL, call->arguments[0].len, call->arguments[0].data);
    if (batch == NULL) {
        snprintf(message, sizeof message, "argument 1 of Verifier.scoreGroups (%zu bytes) does not decode as selfimprove.v1.ScoreBatch", call->arguments[0].len);
        send_error(node, route, call->call_id, "arguments.invalid", "", message);
        return;
    }
    call_t *queued = calloc(1, sizeof *queued);
    if (queued != NULL) queued->groups = calloc(batch->n_groups ? batch->n_groups : 1, sizeof *queued->groups);
    if (queued == NULL || queued->groups == NULL) {
        free(queued);
        selfimprove__v1__score_batch__free_unpacked(batch, NULL);
        send_error(node, route, call->call_id, "remote.threw", "OutOfMemory", "the verifier node is out of memory");
        return;
    }
    queued->route = *route;
    queued->call_id = call->call_id;
    queued->batch = batch;
    call_t **tail = &node->calls;
    while (*tail != NULL) tail = &(*tail)->next;
    *tail = queued;
    node->queued_calls++;
}

static void handle_cancel(node_t *node, const route_t *route, uint64_t call_id) {
    for (call_t **c = &node->calls; *c != NULL; c = &(*c)->next) {
        if ((*c)->call_id == call_id && same_route(&(*c)->route, route)) {
            call_t *cancelled = *c;
            *c = cancelled->next;
            node->queued_calls--;
            log_line(LOG_DEBUG, "Cancelled a call call.id=%" PRIu64 " scored=%zu groups=%zu", call_id, cancelled->scored, cancelled->batch->n_groups);
            free_call(cancelled);
            node->calls_cancelled++;
            return;
        }
    }
}

/* Scores groups of the first call for about one slice; answers it once every group is scored
 * (or with an error when one cannot be). Returns whether work remains now. */
static bool score_slice(node_t *node) {
    int64_t started = now_ms();
    while (node->calls != NULL) {
        call_t *call = node->calls;
        if (call->scored < call->batch->n_groups) {
            if (node->options->score_delay_ms > 0) {
                int64_t now = now_ms();
                if (call->next_group_ms == 0) call->next_group_ms = now + node->options->score_delay_ms;
                if (now < call->next_group_ms) return false;
                call->next_group_ms = now + node->options->score_delay_ms;
            }
            char error[512];
            Selfimprove__V1__ScoreReply *group = scoring_score_group(call->batch->groups[call->scored], error, sizeof error);
            if (group == NULL) {
                send_error(node, &call->route, call->call_id, "remote.threw", "ClusterNodes.VerifierError", error);
                node->calls = call->next;
                node->queued_calls--;
                free_call(call);
                continue;
            }
            call->groups[call->scored++] = group;
            node->groups_scored++;
        }
        if (call->scored == call->batch->n_groups) {
            size_t length = 0;
            uint8_t *result = scoring_pack_reply(call->groups, call->scored, node->options->name, &length);
            if (result == NULL) send_error(node, &call->route, call->call_id, "remote.threw", "OutOfMemory", "the verifier node is out of memory");
            else send_reply(node, &call->route, call->call_id, result, length);
            free(result);
            node->calls = call->next;
            node->queued_calls--;
            free_call(call);
        }
        if (now_ms() - started >= SCORING_SLICE_MS) break;
    }
    return node->calls != NULL && node->options->score_delay_ms == 0;
}

// MARK: - Receiving

static void reject_frame(node_t *node, const route_t *route, const char *reason) {
    char peer[600];
    node->frames_rejected++;
    log_line(LOG_WARNING, "Rejected frame from peer peer=\"%s\" reason=\"%s\"", describe(node, route, peer, sizeof peer), reason);
}

/* The receptionist entries of another node: this node calls nobody, so it only checks that
 * they name the sender (Protos/README.md, "Receptionist"). */
static void handle_receptionist_update(node_t *node, const route_t *route, const Selfimprove__V1__ReceptionistUpdate *update) {
    connection_t *connection = find_connection(node, route);
    if (connection == NULL || !connection->associated) return;
    size_t refused = 0;
    for (size_t i = 0; i < update->n_added; i++) {
        const Selfimprove__V1__ActorIdentity *actor = update->added[i]->actor;
        const char *problem = NULL;
        if (actor == NULL || !valid_identity(actor->node, &problem) || strcmp(actor->node->endpoint, connection->remote_endpoint) != 0 ||
            actor->node->incarnation != connection->remote_incarnation) {
            refused++;
        }
    }
    log_line(refused ? LOG_WARNING : LOG_DEBUG, "Receptionist update peer=\"%s\" snapshot=%d added=%zu removed=%zu refused=%zu", connection->remote_endpoint,
             update->snapshot, update->n_added, update->n_removed, refused);
}

static void dispatch(node_t *node, const route_t *route, const Selfimprove__V1__Envelope *envelope) {
    switch (envelope->body_case) {
    case SELFIMPROVE__V1__ENVELOPE__BODY_CALL:
        note_heard(node, route);
        handle_call(node, route, envelope->call);
        break;
    case SELFIMPROVE__V1__ENVELOPE__BODY_REPLY:
    case SELFIMPROVE__V1__ENVELOPE__BODY_ERROR:
        /* This node makes no calls: a reply is late or unknown. */
        note_heard(node, route);
        log_line(LOG_DEBUG, "Late or unknown reply dropped");
        break;
    case SELFIMPROVE__V1__ENVELOPE__BODY_HANDSHAKE:
        handle_handshake(node, route, envelope->handshake);
        break;
    case SELFIMPROVE__V1__ENVELOPE__BODY_HANDSHAKE_ACCEPT:
        handle_handshake_accept(node, route, envelope->handshake_accept);
        break;
    case SELFIMPROVE__V1__ENVELOPE__BODY_HANDSHAKE_REJECT:
        if (route->inbound) break;
        log_line(LOG_ERROR, "Handshake refused peer=\"%s\" reason=\"%s\"", node->options->coordinator, envelope->handshake_reject->reason);
        node->exit_status = NODE_EXIT_FAILED;
        node->finished = true;
        break;
    case SELFIMPROVE__V1__ENVELOPE__BODY_HEARTBEAT:
        note_heard(node, route);
        break;
    case SELFIMPROVE__V1__ENVELOPE__BODY_RECEPTIONIST_UPDATE:
        note_heard(node, route);
        handle_receptionist_update(node, route, envelope->receptionist_update);
        break;
    case SELFIMPROVE__V1__ENVELOPE__BODY_ASSOCIATION_UNKNOWN:
        /* The peer lost our association (it declared us down): introduce ourselves again. */
        if (!route->inbound) send_handshake(node);
        break;
    case SELFIMPROVE__V1__ENVELOPE__BODY_CANCEL:
        handle_cancel(node, route, envelope->cancel->call_id);
        break;
    default:
        reject_frame(node, route, "envelope has no body");
        break;
    }
}

/* Reads one message from `socket` and handles it. Returns false when nothing was waiting. */
static bool receive_one(node_t *node, void *socket) {
    enum { KEPT = 4 };
    zmq_msg_t frames[KEPT];
    size_t count = 0;
    bool more = true;
    while (more) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, socket, count == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&frame);
            if (count == 0) return false;
            break;
        }
        more = zmq_msg_more(&frame);
        if (count < KEPT) frames[count] = frame;
        else zmq_msg_close(&frame);
        count++;
    }
    route_t route = {.inbound = socket == node->router};
    size_t first_body = 0;
    if (route.inbound) {
        size_t length = zmq_msg_size(&frames[0]);
        route.routing_id_length = length < sizeof route.routing_id ? length : sizeof route.routing_id;
        memcpy(route.routing_id, zmq_msg_data(&frames[0]), route.routing_id_length);
        first_body = 1;
    }
    size_t body = count - first_body;
    char reason[200];
    if (body != 2 || zmq_msg_size(&frames[first_body]) != 1) {
        snprintf(reason, sizeof reason, "expected 2 frames [version][envelope], got %zu (first frame %zu bytes)", body,
                 body > 0 && first_body < KEPT ? zmq_msg_size(&frames[first_body]) : (size_t)0);
        reject_frame(node, &route, reason);
    } else if (((const uint8_t *)zmq_msg_data(&frames[first_body]))[0] != PROTOCOL_VERSION) {
        snprintf(reason, sizeof reason, "unsupported protocol version %u", ((const uint8_t *)zmq_msg_data(&frames[first_body]))[0]);
        reject_frame(node, &route, reason);
    } else {
        zmq_msg_t *payload = &frames[first_body + 1];
        size_t limit = 0;
        Selfimprove__V1__Envelope *envelope = NULL;
        if (!within_allocation_budget(zmq_msg_data(payload), zmq_msg_size(payload), &limit)) {
            snprintf(reason, sizeof reason, "more than %zu length-delimited fields in %zu bytes: it would decode into far more memory than it takes; refused before decoding",
                     limit, zmq_msg_size(payload));
            reject_frame(node, &route, reason);
        } else if ((envelope = selfimprove__v1__envelope__unpack(NULL, zmq_msg_size(payload), zmq_msg_data(payload))) == NULL) {
            snprintf(reason, sizeof reason, "undecodable envelope (%zu bytes)", zmq_msg_size(payload));
            reject_frame(node, &route, reason);
        } else {
            dispatch(node, &route, envelope);
            selfimprove__v1__envelope__free_unpacked(envelope, NULL);
        }
    }
    for (size_t i = 0; i < count && i < KEPT; i++) zmq_msg_close(&frames[i]);
    return true;
}

// MARK: - Allocation budget

/* A protobuf decoder allocates per element: a 64 MiB frame of empty repeated messages (two
 * bytes each) would unpack into 32 million allocations. Before unpacking, count the
 * length-delimited fields at every depth where a payload reads as a message (an upper bound on
 * what unpacking allocates) and refuse a frame with more than 4096 + size / 16 of them: the
 * rule of the Swift nodes (WireAllocationBudget). Returns whether the bytes are well-formed. */
static bool read_varint(const uint8_t *data, size_t length, size_t *offset, uint64_t *value) {
    *value = 0;
    for (unsigned shift = 0; *offset < length && shift < 64; shift += 7) {
        uint8_t byte = data[(*offset)++];
        *value |= (uint64_t)(byte & 0x7F) << shift;
        if ((byte & 0x80) == 0) return true;
    }
    return false;
}

static bool count_fields(const uint8_t *data, size_t length, int depth, size_t limit, size_t *count) {
    size_t offset = 0;
    while (offset < length) {
        uint64_t key, value;
        if (*count > limit || !read_varint(data, length, &offset, &key) || (key >> 3) == 0) return false;
        switch (key & 7) {
        case 0:
            if (!read_varint(data, length, &offset, &value)) return false;
            break;
        case 1:
            if (length - offset < 8) return false;
            offset += 8;
            break;
        case 5:
            if (length - offset < 4) return false;
            offset += 4;
            break;
        case 2:
            if (!read_varint(data, length, &offset, &value) || value > length - offset) return false;
            (*count)++;
            if (depth < 12 && value > 0) (void)count_fields(data + offset, (size_t)value, depth + 1, limit, count);
            offset += (size_t)value;
            break;
        default:
            return false;
        }
    }
    return true;
}

static bool within_allocation_budget(const uint8_t *data, size_t length, size_t *limit) {
    size_t count = 0;
    *limit = 4096 + length / 16;
    (void)count_fields(data, length, 0, *limit, &count);
    return count <= *limit;
}

// MARK: - Timers

/* Heartbeats, handshake retries and failure detection, every tick. */
static void tick(node_t *node) {
    const options_t *options = node->options;
    int64_t now = now_ms();
    /* If this process itself was paused (SIGSTOP), everyone looks silent: restart the clocks. */
    bool paused = node->last_tick_ms != 0 && now - node->last_tick_ms > options->failure_timeout_ms;
    node->last_tick_ms = now;
    if (options->coordinator != NULL) {
        connection_t *outbound = &node->outbound;
        if (paused) outbound->last_heard_ms = now;
        if (outbound->associated && now - outbound->last_heard_ms > options->failure_timeout_ms) {
            char reason[80];
            snprintf(reason, sizeof reason, "silent for %" PRId64 " ms", now - outbound->last_heard_ms);
            declare_down(node, outbound, reason);
        }
        if (outbound->associated) {
            if (now - outbound->last_sent_ms >= options->heartbeat_ms) send_heartbeat(node, outbound);
        } else if (now - outbound->last_sent_ms >= 4 * options->heartbeat_ms) {
            send_handshake(node);
        }
    }
    for (connection_t **c = &node->inbound; *c != NULL;) {
        connection_t *connection = *c;
        if (paused) connection->last_heard_ms = now;
        if (connection->associated && now - connection->last_heard_ms > options->failure_timeout_ms) {
            char reason[80];
            snprintf(reason, sizeof reason, "silent for %" PRId64 " ms", now - connection->last_heard_ms);
            declare_down(node, connection, reason);
        }
        if (connection->associated && now - connection->last_sent_ms >= options->heartbeat_ms) send_heartbeat(node, connection);
        /* A connection that stayed without an association is forgotten after a minute. */
        if (!connection->associated && now - connection->last_heard_ms > 60000) {
            *c = connection->next;
            free(connection);
            node->inbound_count--;
            continue;
        }
        c = &connection->next;
    }
}

// MARK: - Running

static int set_int(void *socket, int option, int value) { return zmq_setsockopt(socket, option, &value, sizeof value); }

/* The reference nodes' socket options (Protos/README.md, "Sockets"). No ZMTP heartbeats: libzmq
 * aborts the process when one reaches a connection stopped at its high-water mark after the peer
 * hung up (libzmq #3937, #4364, #4767); the protocol's own heartbeats detect failure, and TCP
 * keepalive plus a retransmission limit close half-open connections. */
static int configure_socket(void *socket) {
    int64_t max_message = 64 << 20;
    if (set_int(socket, ZMQ_LINGER, 0) != 0 || set_int(socket, ZMQ_SNDHWM, 10000) != 0 || set_int(socket, ZMQ_RCVHWM, 10000) != 0 ||
        zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &max_message, sizeof max_message) != 0 || set_int(socket, ZMQ_TCP_KEEPALIVE, 1) != 0 ||
        set_int(socket, ZMQ_TCP_KEEPALIVE_IDLE, 10) != 0 || set_int(socket, ZMQ_TCP_KEEPALIVE_INTVL, 5) != 0 ||
        set_int(socket, ZMQ_TCP_KEEPALIVE_CNT, 3) != 0 || set_int(socket, ZMQ_TCP_MAXRT, 30000) != 0 ||
        set_int(socket, ZMQ_RECONNECT_IVL, 100) != 0 || set_int(socket, ZMQ_RECONNECT_IVL_MAX, 1000) != 0) {
        return -1;
    }
    return 0;
}

static int start(node_t *node, char *error, size_t error_size) {
    const options_t *options = node->options;
    do {
        if (getrandom(&node->incarnation, sizeof node->incarnation, 0) != sizeof node->incarnation) node->incarnation = (uint64_t)now_ms() * 6364136223846793005u;
    } while (node->incarnation == 0);
    node->context = zmq_ctx_new();
    if (node->context == NULL) {
        snprintf(error, error_size, "cannot create a ZeroMQ context: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    if (options->curve_keys != NULL) {
        if (!zmq_has("curve")) {
            snprintf(error, error_size, "CURVE is on but this libzmq was built without it");
            return -1;
        }
        if (curve_load(options, &node->curve, error, error_size) != 0 || curve_start_zap(&node->curve, node->context, error, error_size) != 0) return -1;
        node->curve_on = true;
    }
    node->router = zmq_socket(node->context, ZMQ_ROUTER);
    if (node->router == NULL || configure_socket(node->router) != 0 || set_int(node->router, ZMQ_ROUTER_MANDATORY, 1) != 0 ||
        set_int(node->router, ZMQ_ROUTER_HANDOVER, 1) != 0 || (node->curve_on && curve_configure_server(&node->curve, node->router) != 0)) {
        snprintf(error, error_size, "cannot set up the ROUTER socket: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    if (zmq_bind(node->router, options->bind) != 0) {
        snprintf(error, error_size, "cannot bind %s: %s", options->bind, zmq_strerror(zmq_errno()));
        return -1;
    }
    size_t length = sizeof node->endpoint;
    if (options->advertise != NULL) snprintf(node->endpoint, sizeof node->endpoint, "%s", options->advertise);
    else if (zmq_getsockopt(node->router, ZMQ_LAST_ENDPOINT, node->endpoint, &length) != 0) {
        snprintf(error, error_size, "cannot read the bound endpoint: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    if (options->coordinator != NULL) {
        node->dealer = zmq_socket(node->context, ZMQ_DEALER);
        /* The routing id: 0x6E, then the incarnation in big-endian. */
        uint8_t routing_id[9] = {0x6E};
        for (int i = 0; i < 8; i++) routing_id[1 + i] = (uint8_t)(node->incarnation >> (56 - 8 * i));
        if (node->dealer == NULL || configure_socket(node->dealer) != 0 || zmq_setsockopt(node->dealer, ZMQ_ROUTING_ID, routing_id, sizeof routing_id) != 0 ||
            (node->curve_on && curve_configure_client(&node->curve, node->dealer) != 0)) {
            snprintf(error, error_size, "cannot set up the DEALER socket: %s", zmq_strerror(zmq_errno()));
            return -1;
        }
        if (zmq_connect(node->dealer, options->coordinator) != 0) {
            snprintf(error, error_size, "cannot connect to %s: %s", options->coordinator, zmq_strerror(zmq_errno()));
            return -1;
        }
        node->outbound.route.inbound = false;
        send_handshake(node);
    }
    return 0;
}

/* Says goodbye (an empty receptionist snapshot to every associated peer, sent before the
 * sockets close) and releases everything. */
static void stop(node_t *node) {
    if (node->outbound.associated) send_snapshot(node, &node->outbound.route, true);
    for (connection_t *c = node->inbound; c != NULL; c = c->next) {
        if (c->associated) send_snapshot(node, &c->route, true);
    }
    /* A moment for the last reply and the goodbyes to leave. */
    if (node->router != NULL) { set_int(node->router, ZMQ_LINGER, 500); zmq_close(node->router); }
    if (node->dealer != NULL) { set_int(node->dealer, ZMQ_LINGER, 500); zmq_close(node->dealer); }
    curve_stop(&node->curve);
    if (node->context != NULL) zmq_ctx_term(node->context);
    while (node->inbound != NULL) {
        connection_t *next = node->inbound->next;
        free(node->inbound);
        node->inbound = next;
    }
    while (node->calls != NULL) {
        call_t *next = node->calls->next;
        free_call(node->calls);
        node->calls = next;
    }
}

int node_run(const options_t *options, volatile sig_atomic_t *stop_requested) {
    node_t node = {.options = options, .exit_status = NODE_EXIT_FINISHED};
    char error[1024];
    if (start(&node, error, sizeof error) != 0) {
        log_line(LOG_ERROR, "The node did not start error=\"%s\"", error);
        stop(&node);
        return NODE_EXIT_FAILED;
    }
    log_line(LOG_INFO, "Listening endpoint=\"%s\" incarnation=%016" PRIx64 " curve=%s coordinator=\"%s\"", node.endpoint, node.incarnation,
             node.curve_on ? "on" : "off", options->coordinator ? options->coordinator : "-");
    int tick_ms = options->heartbeat_ms < 50 ? options->heartbeat_ms : 50;
    int64_t next_tick = now_ms();
    bool stdin_open = options->stop_on_stdin_eof;
    bool interrupted = false;
    while (!node.finished) {
        if (*stop_requested) {
            interrupted = true;
            break;
        }
        zmq_pollitem_t items[4];
        int count = 0, router_item = -1, dealer_item = -1, zap_item = -1, stdin_item = -1;
        items[count] = (zmq_pollitem_t){.socket = node.router, .events = ZMQ_POLLIN};
        router_item = count++;
        if (node.dealer != NULL) {
            items[count] = (zmq_pollitem_t){.socket = node.dealer, .events = ZMQ_POLLIN};
            dealer_item = count++;
        }
        if (node.curve_on) {
            items[count] = (zmq_pollitem_t){.socket = node.curve.zap, .events = ZMQ_POLLIN};
            zap_item = count++;
        }
        if (stdin_open) {
            items[count] = (zmq_pollitem_t){.socket = NULL, .fd = STDIN_FILENO, .events = ZMQ_POLLIN};
            stdin_item = count++;
        }
        int64_t now = now_ms();
        long timeout = next_tick > now ? (long)(next_tick - now) : 0;
        if (node.calls != NULL) {
            if (options->score_delay_ms == 0) timeout = 0;
            else if (node.calls->next_group_ms != 0 && node.calls->next_group_ms - now < timeout) timeout = node.calls->next_group_ms > now ? (long)(node.calls->next_group_ms - now) : 0;
        }
        if (zmq_poll(items, count, timeout) < 0) {
            if (zmq_errno() == EINTR) continue;
            log_line(LOG_ERROR, "zmq_poll failed error=\"%s\"", zmq_strerror(zmq_errno()));
            node.exit_status = NODE_EXIT_FAILED;
            break;
        }
        if (zap_item >= 0 && (items[zap_item].revents & ZMQ_POLLIN)) curve_answer_zap(&node.curve);
        if (items[router_item].revents & ZMQ_POLLIN) {
            for (int i = 0; i < MAX_READS_PER_TURN && receive_one(&node, node.router); i++) {}
        }
        if (dealer_item >= 0 && (items[dealer_item].revents & ZMQ_POLLIN)) {
            for (int i = 0; i < MAX_READS_PER_TURN && receive_one(&node, node.dealer); i++) {}
        }
        if (stdin_item >= 0 && (items[stdin_item].revents & (ZMQ_POLLIN | ZMQ_POLLERR))) {
            char scratch[4096];
            ssize_t got = read(STDIN_FILENO, scratch, sizeof scratch);
            if (got <= 0 && !(got < 0 && errno == EINTR)) {
                log_line(LOG_INFO, "Standard input closed; stopping");
                stdin_open = false;
                interrupted = true;
                break;
            }
        }
        if (now_ms() >= next_tick) {
            tick(&node);
            next_tick = now_ms() + tick_ms;
        }
        score_slice(&node);
    }
    if (interrupted) {
        node.exit_status = NODE_EXIT_INTERRUPTED;
        log_line(LOG_INFO, "Stopping calls=%" PRIu64 " groups=%" PRIu64, node.calls_served, node.groups_scored);
    }
    stop(&node);
    return node.exit_status;
}
