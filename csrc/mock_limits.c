/*
 * Raise the per-partition retention of librdkafka's mock cluster.
 *
 * rd_kafka_mock_partition_init() hard-codes max_size = 5 MiB and
 * max_cnt = 100000 message sets per partition, and the log append silently
 * drops the oldest message sets beyond that. librdkafka has no API to change
 * it, so this shim is compiled by build.rs against the *same* bundled
 * librdkafka tree that rdkafka-sys builds (DEP_RDKAFKA_ROOT): same internal
 * headers, same generated config.h, hence the same struct layout.
 *
 * Threading: the mock cluster thread owns the topic list and appends to
 * partitions without taking any lock. So the shim does not touch the cluster
 * from the caller's thread: it sends a callback op to the cluster's op queue
 * (the same way the public rd_kafka_mock_*() setters work) and waits for the
 * reply; the limits are written on the mock cluster thread itself, between two
 * requests it serves. Call it right after creating the topic and before
 * anything produces to it: message sets dropped before the call are gone.
 */

#include "rdkafka_int.h"
#include "rdkafka_mock_int.h"

/* Returned when the topic does not exist in the mock cluster. */
#define CHURNWATCH_MOCK_NO_TOPIC -1
/* Returned when the mock cluster did not serve the request (shutting down). */
#define CHURNWATCH_MOCK_NOT_SERVED -2

/* What the caller asks for; lives on the caller's stack, which blocks until the
 * cluster thread has replied. */
struct churnwatch_limits_req {
        rd_kafka_mock_cluster_t *mcluster;
        size_t max_size;
        size_t max_cnt;
};

/*
 * Runs on the mock cluster thread (its op queue is served with
 * RD_KAFKA_Q_CB_CALLBACK), or with ERR__DESTROY when the op is destroyed
 * unserved, in which case the request may be gone and is not read.
 */
static rd_kafka_op_res_t churnwatch_set_limits_cb(rd_kafka_t *rk,
                                                  rd_kafka_q_t *rkq,
                                                  rd_kafka_op_t *rko) {
        const struct churnwatch_limits_req *req;
        rd_kafka_mock_topic_t *mtopic;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        int i;

        (void)rk;
        if (!rkq || rko->rko_err == RD_KAFKA_RESP_ERR__DESTROY)
                return RD_KAFKA_OP_RES_HANDLED;

        req = (const struct churnwatch_limits_req *)(intptr_t)
                  rko->rko_u.mock.lo;
        if (!(mtopic = rd_kafka_mock_topic_find(req->mcluster,
                                                rko->rko_u.mock.name))) {
                err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        } else {
                for (i = 0; i < mtopic->partition_cnt; i++) {
                        mtopic->partitions[i].max_size = req->max_size;
                        mtopic->partitions[i].max_cnt  = req->max_cnt;
                }
        }

        /* Turn the op into a plain reply so the waiting caller pops it
         * instead of running this callback again on its own queue. */
        rko->rko_op_cb = NULL;
        rko->rko_type &= ~RD_KAFKA_OP_CB;
        rd_kafka_op_reply(rko, err);
        /* The reply now owns rko: it must not be destroyed here. */
        return RD_KAFKA_OP_RES_KEEP;
}

/*
 * Sets max_size (bytes) and max_cnt (message sets) of every partition of
 * `topic`. Returns 0 on success, -1 if the topic does not exist, -2 if the
 * cluster did not serve the request. Blocks until the cluster thread has
 * applied the limits.
 */
int churnwatch_mock_set_partition_limits(rd_kafka_mock_cluster_t *mcluster,
                                         const char *topic,
                                         size_t max_size,
                                         size_t max_cnt) {
        struct churnwatch_limits_req req;
        rd_kafka_op_t *rko;
        rd_kafka_resp_err_t err;

        if (!mcluster || !topic)
                return CHURNWATCH_MOCK_NOT_SERVED;

        req.mcluster = mcluster;
        req.max_size = max_size;
        req.max_cnt  = max_cnt;

        rko = rd_kafka_op_new_cb(mcluster->rk, RD_KAFKA_OP_MOCK,
                                 churnwatch_set_limits_cb);
        rko->rko_u.mock.name = rd_strdup(topic); /* freed with the op */
        /* The op has no opaque pointer; .lo is an int64_t nobody else reads
         * for this op (the callback is ours). */
        rko->rko_u.mock.lo = (int64_t)(intptr_t)&req;

        err = rd_kafka_op_err_destroy(
            rd_kafka_op_req(mcluster->ops, rko, RD_POLL_INFINITE));

        if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                return CHURNWATCH_MOCK_NO_TOPIC;
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
                return CHURNWATCH_MOCK_NOT_SERVED;
        return 0;
}
