/* rpc.h - the JSON-RPC methods: ping, version, submit, status, list, cancel,
 * retry, watch, errors, backup.  Each handler checks its params, names the
 * one at fault, and answers through conn_send. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "engine.h"
#include "journal.h"

struct conn;
struct rpc_backup;
struct authz;

struct rpc_env {
        uv_loop_t *loop;
        struct engine *engine;
        struct journal *journal;
        struct authz *authz; /* who may do what; replaced on SIGHUP */
        uint64_t started_mono_ms;
        bool stopping;
        struct rpc_backup *backup; /* the backup in progress, at most one */
};

/* Handles one parsed request; sends the reply (if the request has an id). */
void rpc_handle(struct rpc_env *env, struct conn *c, json_t *req);
