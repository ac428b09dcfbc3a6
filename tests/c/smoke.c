/*
 * A C program against include/subtask.h: one task through a host model and a host tool,
 * events, tool definitions, stats, error paths, and every free. Built and run (also under
 * valgrind) by tests/ffi_c.rs:
 *
 *   gcc -std=c11 -Wall -Wextra -Werror -pedantic -Iinclude tests/c/smoke.c \
 *       -Ltarget/debug -lsubtask -Wl,-rpath,$PWD/target/debug -o smoke
 *   ./smoke [WORKSPACE_DIR]
 *
 * Exits 0 when every check passes; otherwise prints what failed and exits 1.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "subtask.h"

#define CHECK(condition, ...)                                                         \
    do {                                                                              \
        if (!(condition)) {                                                           \
            fprintf(stderr, "smoke.c:%d: check failed: %s: ", __LINE__, #condition); \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

/* Fails with the error's code and message unless `error` is NULL. */
static void check_ok(subtask_error *error, const char *what) {
    if (error != NULL) {
        fprintf(stderr, "smoke.c: %s failed: code %d: %s\n", what, (int)subtask_error_code(error),
                subtask_error_message(error));
        subtask_error_free(error);
        exit(1);
    }
}

/* Checks `error` is an error with `code` and a message, then frees it. */
static void check_error(subtask_error *error, int32_t code, const char *what) {
    CHECK(error != NULL, "%s: expected an error, got success", what);
    const char *message = subtask_error_message(error);
    CHECK(subtask_error_code(error) == code, "%s: code %d, expected %d (%s)", what,
          (int)subtask_error_code(error), (int)code, message);
    CHECK(message != NULL && message[0] != '\0', "%s: the error has no message", what);
    printf("ok: %s -> error %d: %s\n", what, (int)code, message);
    subtask_error_free(error);
}

struct counters {
    atomic_int model_calls;
    atomic_int tool_calls;
    atomic_int events;
    atomic_int finished_events;
};

static const char TOOL_CALL[] =
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"c-model\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,"
    "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{"
    "\"name\":\"greet\",\"arguments\":\"{\\\"name\\\":\\\"C\\\"}\"}}]},"
    "\"finish_reason\":\"tool_calls\"}],"
    "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":7,\"total_tokens\":19}}";

static const char ANSWER[] =
    "{\"id\":\"chatcmpl-2\",\"object\":\"chat.completion\",\"model\":\"c-model\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":\"Hi from C, the tool said hello\"},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":8,\"total_tokens\":38}}";

/* The host model: asks for the tool first, answers once the tool's result is in. */
static int32_t model(void *user_data, const char *request_json, subtask_reply *reply) {
    struct counters *counters = user_data;
    atomic_fetch_add(&counters->model_calls, 1);
    if (strstr(request_json, "\"role\":\"tool\"") == NULL) {
        if (strstr(request_json, "\"greet\"") == NULL) {
            subtask_reply_set(reply, "the request does not offer the greet tool");
            return 1;
        }
        subtask_reply_set(reply, TOOL_CALL);
        return 0;
    }
    if (strstr(request_json, "hello, C") == NULL) {
        subtask_reply_set(reply, "the tool's result is not in the request");
        return 1;
    }
    subtask_reply_set(reply, ANSWER);
    return 0;
}

/* The host tool: greets whoever `name` says (a real tool would parse the JSON). */
static int32_t greet(void *user_data, const char *input_json, subtask_reply *reply) {
    struct counters *counters = user_data;
    atomic_fetch_add(&counters->tool_calls, 1);
    if (strstr(input_json, "\"name\":\"C\"") == NULL) {
        subtask_reply_set(reply, "expected {\"name\": \"C\"}");
        return 1;
    }
    subtask_reply_set(reply, "hello, C");
    return 0;
}

/* Events arrive on the runtime's scheduler threads: count them with atomics. */
static void on_event(void *user_data, const char *event_json) {
    struct counters *counters = user_data;
    atomic_fetch_add(&counters->events, 1);
    if (strstr(event_json, "\"kind\":\"finished\"") != NULL) {
        atomic_fetch_add(&counters->finished_events, 1);
    }
}

int main(int argc, char **argv) {
    CHECK(subtask_abi_version() == SUBTASK_ABI_VERSION, "library ABI %u, header ABI %u",
          (unsigned)subtask_abi_version(), (unsigned)SUBTASK_ABI_VERSION);

    /* The workspace: argv[1], or a fresh temporary directory. */
    char made[] = "/tmp/subtask-smoke-XXXXXX";
    const char *workspace = argc > 1 ? argv[1] : mkdtemp(made);
    CHECK(workspace != NULL, "mkdtemp failed");
    CHECK(strpbrk(workspace, "\"\\") == NULL, "the workspace path needs JSON escaping");

    struct counters counters;
    atomic_init(&counters.model_calls, 0);
    atomic_init(&counters.tool_calls, 0);
    atomic_init(&counters.events, 0);
    atomic_init(&counters.finished_events, 0);

    /* Configuration errors: an unknown key, a wrong type, NULL out. */
    subtask_config *config = (subtask_config *)&counters; /* a sentinel: must stay as is */
    check_error(subtask_config_new("{\"no_such_setting\": 1}", &config), SUBTASK_ERROR_INVALID_INPUT,
                "config with an unknown key");
    CHECK(config == (subtask_config *)&counters, "the out-parameter was written on failure");
    check_error(subtask_config_new("{\"execution_threads\": \"x\"}", &config),
                SUBTASK_ERROR_INVALID_INPUT, "config with a wrong type");
    check_error(subtask_config_new("{", &config), SUBTASK_ERROR_INVALID_INPUT,
                "config that is not JSON");
    check_error(subtask_config_new(NULL, NULL), SUBTASK_ERROR_INVALID_INPUT, "config, NULL out");

    char settings[4096];
    int length = snprintf(settings, sizeof settings,
                          "{\"execution_threads\": 2, \"scheduler_threads\": 2, "
                          "\"transcripts\": \"off\", \"workspace\": \"%s\"}",
                          workspace);
    CHECK(length > 0 && (size_t)length < sizeof settings, "the workspace path is too long");
    config = NULL;
    check_ok(subtask_config_new(settings, &config), "subtask_config_new");
    CHECK(config != NULL, "no config");
    check_ok(subtask_config_set_model(config, "c-model", model, &counters),
             "subtask_config_set_model");
    check_ok(subtask_config_add_tool(config, "greet", "Greets someone by name.",
                                     "{\"type\": \"object\", \"properties\": {\"name\": "
                                     "{\"type\": \"string\"}}, \"required\": [\"name\"]}",
                                     true, greet, &counters),
             "subtask_config_add_tool");
    check_error(subtask_config_add_tool(config, "bad", "A tool with a bad schema.", "[1, 2]", false,
                                        greet, &counters),
                SUBTASK_ERROR_INVALID_INPUT, "a tool whose schema is not an object");
    check_error(subtask_config_add_tool(config, "nocallback", "No callback.", "{}", false, NULL,
                                        NULL),
                SUBTASK_ERROR_INVALID_INPUT, "a tool with a NULL callback");
    check_ok(subtask_config_set_event_callback(config, on_event, &counters),
             "subtask_config_set_event_callback");

    subtask_runtime *runtime = NULL;
    check_ok(subtask_runtime_new(config, &runtime), "subtask_runtime_new");
    CHECK(runtime != NULL, "no runtime");
    subtask_config_free(config); /* the runtime keeps what it needs */
    config = NULL;

    /* One task: the model calls the host tool, then answers. */
    char *result = NULL;
    check_ok(subtask_task(runtime,
                          "{\"description\":\"Say hi\",\"prompt\":\"Say hi\","
                          "\"subagent_type\":\"general-purpose\"}",
                          &result),
             "subtask_task");
    CHECK(result != NULL, "no result");
    printf("task result: %s\n", result);
    CHECK(strstr(result, "\"status\":\"completed\"") != NULL, "the task did not complete: %s",
          result);
    CHECK(strstr(result, "Hi from C, the tool said hello") != NULL, "the answer is missing: %s",
          result);
    CHECK(strstr(result, "\"is_error\":false") != NULL, "is_error is not false: %s", result);
    CHECK(strstr(result, "\"footer\":\"[run general-purpose-") != NULL, "no footer: %s", result);
    subtask_string_free(result);

    CHECK(atomic_load(&counters.model_calls) == 2, "%d model calls, expected 2",
          atomic_load(&counters.model_calls));
    CHECK(atomic_load(&counters.tool_calls) == 1, "%d tool calls, expected 1",
          atomic_load(&counters.tool_calls));

    /* A cancelled canceller: the call returns with its run cancelled. */
    subtask_canceller *canceller = NULL;
    check_ok(subtask_canceller_new(&canceller), "subtask_canceller_new");
    subtask_canceller_cancel(canceller);
    char *cancelled_result = NULL;
    check_ok(subtask_task_with(runtime,
                               "{\"description\":\"Say hi\",\"prompt\":\"Say hi\","
                               "\"subagent_type\":\"general-purpose\"}",
                               canceller, &cancelled_result),
             "subtask_task_with");
    CHECK(strstr(cancelled_result, "\"status\":\"cancelled\"") != NULL, "not cancelled: %s",
          cancelled_result);
    subtask_string_free(cancelled_result);
    subtask_canceller_free(canceller);

    /* The tool's definition in every format. */
    const char *formats[] = {"openai", "anthropic", "mcp"};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        char *definition = NULL;
        check_ok(subtask_tool_definition(runtime, formats[i], &definition),
                 "subtask_tool_definition");
        CHECK(definition != NULL && strstr(definition, "\"task\"") != NULL,
              "the %s definition does not name the task tool", formats[i]);
        printf("ok: %s definition, %zu bytes\n", formats[i], strlen(definition));
        subtask_string_free(definition);
    }
    char *untouched = (char *)formats; /* a sentinel */
    check_error(subtask_tool_definition(runtime, "xml", &untouched), SUBTASK_ERROR_INVALID_INPUT,
                "an unknown definition format");
    CHECK(untouched == (char *)formats, "the out-parameter was written on failure");

    char *stats = NULL;
    check_ok(subtask_stats(runtime, &stats), "subtask_stats");
    printf("stats: %s\n", stats);
    CHECK(strstr(stats, "\"completed\":1") != NULL, "stats do not count the task: %s", stats);
    subtask_string_free(stats);

    /* Nothing is live: cancelling finds nothing. */
    bool cancelled = true;
    check_ok(subtask_cancel(runtime, "no-such-task", &cancelled), "subtask_cancel");
    CHECK(!cancelled, "cancelled a task that does not exist");
    size_t count = 99;
    check_ok(subtask_cancel_all(runtime, &count), "subtask_cancel_all");
    CHECK(count == 0, "cancel_all counted %zu tasks", count);

    /* Error paths of subtask_task. */
    untouched = (char *)formats;
    check_error(subtask_task(runtime, "{not json", &untouched), SUBTASK_ERROR_INVALID_INPUT,
                "subtask_task with invalid JSON");
    CHECK(untouched == (char *)formats, "the out-parameter was written on failure");
    check_error(subtask_task(runtime, "{\"prompt\":\"no description\"}", &untouched),
                SUBTASK_ERROR_INVALID_INPUT, "subtask_task with a missing field");
    check_error(subtask_task(NULL, "{}", &untouched), SUBTASK_ERROR_INVALID_INPUT,
                "subtask_task with a NULL runtime");
    check_error(subtask_task(runtime, NULL, &untouched), SUBTASK_ERROR_INVALID_INPUT,
                "subtask_task with NULL arguments");
    check_error(subtask_task(runtime, "{}", NULL), SUBTASK_ERROR_INVALID_INPUT,
                "subtask_task with a NULL out_json");
    check_error(subtask_stats(NULL, &untouched), SUBTASK_ERROR_INVALID_INPUT,
                "subtask_stats with a NULL runtime");
    CHECK(untouched == (char *)formats, "the out-parameter was written on failure");
    CHECK(subtask_error_code(NULL) == 0, "the code of no error is not 0");
    CHECK(subtask_error_message(NULL) == NULL, "the message of no error is not NULL");

    /* Freeing the runtime delivers the last events and joins its threads. */
    subtask_runtime_free(runtime);
    CHECK(atomic_load(&counters.events) >= 3, "only %d events", atomic_load(&counters.events));
    CHECK(atomic_load(&counters.finished_events) == 1, "%d finished events, expected 1",
          atomic_load(&counters.finished_events));
    printf("ok: %d events\n", atomic_load(&counters.events));

    /* Freeing NULL does nothing. */
    subtask_runtime_free(NULL);
    subtask_config_free(NULL);
    subtask_error_free(NULL);
    subtask_string_free(NULL);
    subtask_reply_set(NULL, "ignored");

    if (argc <= 1) {
        rmdir(made);
    }
    printf("smoke.c: all checks passed\n");
    return 0;
}
