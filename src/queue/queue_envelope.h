/*
 * queue_envelope — the envelope of a queued message and its file format.
 *
 * A queued message is two files in data_dir/queue/: <id>.msg, the message
 * as it will be sent, and <id>.env, its envelope: the sender, every
 * recipient with its own state, the DSN parameters of RFC 3461, the number
 * of attempts and the time of the next one. The envelope is rewritten
 * (atomically, see queue_file.c) after each attempt, so that a recipient
 * delivered once is never tried again after a restart.
 *
 * The file is text, one item per line, so that an administrator can read
 * it (`facteur queue show` prints it decoded):
 *
 *   facteur-queue 1
 *   id 0194A2B3C4D5E6F70
 *   created 1718000000
 *   next 1718000300
 *   attempts 1
 *   flags held,warned
 *   body 8bitmime
 *   ret hdrs
 *   envid QQ+2B123
 *   size 1834
 *   origin submission%20127.0.0.1%20user=fred@truc.fr
 *   from fred@truc.fr
 *   rcpt marc@machin.com state=pending notify=failure,delay attempts=1 ...
 *   end
 *
 * Values are percent-encoded: every byte below 0x21 or above 0x7e, and '%'
 * itself, is written %XX, so that a value never holds a space or a line end
 * (UTF-8 addresses come out as %C3%A9...). A value "-" means empty or
 * absent (a real "-" is written %2D). The rcpt line holds the address, then
 * key=value items (values encoded the same way, where '=' is also encoded).
 * The last line is "end": a file cut short by a crash is refused whole.
 * The parser is strict: an unknown key, a repeated key, a bad number or a
 * missing field is an error, never a guess.
 */
#ifndef FACTEUR_QUEUE_ENVELOPE_H
#define FACTEUR_QUEUE_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Ids are made of [0-9A-Za-z] only (they become file names). */
#define QUEUE_ID_MAX 40
/* Limits of the parser. */
#define QUEUE_ENV_MAX_SIZE (16 * 1024 * 1024)
#define QUEUE_ENV_MAX_RCPTS 100000
#define QUEUE_ENV_MAX_VALUE 4096 /* decoded bytes of one value */

/* RFC 3461 NOTIFY, as flags; 0 when the client gave none (the default:
   failures and delays are reported). */
#define QUEUE_NOTIFY_NEVER 0x01u
#define QUEUE_NOTIFY_SUCCESS 0x02u
#define QUEUE_NOTIFY_FAILURE 0x04u
#define QUEUE_NOTIFY_DELAY 0x08u

enum queue_rcpt_state {
	QUEUE_RCPT_PENDING, /* to be tried (again) */
	QUEUE_RCPT_SENT,    /* accepted by the next hop, or stored here */
	QUEUE_RCPT_FAILED,  /* failed for good */
};

enum queue_body {
	QUEUE_BODY_7BIT,
	QUEUE_BODY_8BITMIME,
	QUEUE_BODY_BINARYMIME,
};

enum queue_ret {
	QUEUE_RET_DEFAULT, /* not given: headers only */
	QUEUE_RET_FULL,
	QUEUE_RET_HDRS,
};

struct queue_rcpt {
	char *addr;	/* "local@domain" */
	char *orcpt;	/* ORCPT as received, "rfc822;xtext", or NULL */
	unsigned notify; /* QUEUE_NOTIFY_*, 0 if not given */
	enum queue_rcpt_state state;
	/* The DSN (or the decision that none is due) for the current state
	   has been made: a failed recipient is bounced once. */
	bool reported : 1;
	/* The next hop took the DSN parameters (it supports DSN): a success
	   is its to report, not ours. */
	bool dsn_passed : 1;
	/* Stored into a local mailbox (Action: delivered, not relayed). */
	bool local : 1;
	unsigned attempts;
	time_t last;	/* time of the last attempt, 0 if none */
	char *status;	/* enhanced status of the last answer, "4.4.1" */
	char *remote;	/* the last host tried: "mx.machin.com[127.0.0.3]" */
	char *diag;	/* the last answer or reason, one line */
};

struct queue_env {
	char id[QUEUE_ID_MAX + 1];
	time_t created; /* arrival */
	time_t next;	/* next attempt; 0: at once */
	unsigned attempts;
	bool held;
	bool warned;	/* the delay notice was sent */
	bool smtputf8;
	enum queue_body body;
	enum queue_ret ret;
	char *envid;	/* ENVID as received (xtext), or NULL */
	uint64_t size;	/* of <id>.msg */
	char *origin;	/* where it came from, for the logs and `show` */
	char *from;	/* "" for the null reverse-path */
	struct queue_rcpt *rcpts;
	size_t rcpt_count;
};

const char *queue_rcpt_state_str(enum queue_rcpt_state state);
const char *queue_body_str(enum queue_body body);

/* True if `id` is 1 to QUEUE_ID_MAX characters of [0-9A-Za-z]. */
bool queue_id_valid(const char *id);

/* A new empty envelope (calloc'd, every string NULL, from ""). */
struct queue_env *queue_env_new(void);
void queue_env_free(struct queue_env **env);
/* Adds a recipient (copied); returns it. */
struct queue_rcpt *queue_env_add_rcpt(struct queue_env *env, const char *addr,
				      unsigned notify, const char *orcpt);
/* Replaces a malloc'd string field with a copy of `value` (NULL: none). */
void queue_env_set(char **field, const char *value);
/* A deep copy. */
struct queue_env *queue_env_dup(const struct queue_env *env);

/* The envelope as file text (malloc'd, *len_r bytes, ends with "end\n"). */
char *queue_env_format(const struct queue_env *env, size_t *len_r);
/* Parses the file text. 0 and a new envelope, or -1 and a malloc'd reason
   ("line 7: bad number in 'attempts'"). */
int queue_env_parse(const char *text, size_t len, struct queue_env **env_r,
		    char **error_r);

/* Percent-encoding of values, as described above: the encoded text of
   `s` (malloc'd; "-" for NULL or ""). `eq` also encodes '='. */
char *queue_env_encode(const char *s, bool eq);
/* Decodes one value into a malloc'd string (NULL for "-"); -1 on a bad
   escape, a raw byte that should have been encoded, %00, or a result
   longer than QUEUE_ENV_MAX_VALUE. */
int queue_env_decode(const char *s, size_t len, char **out_r);

/* NOTIFY flags as text: "never", "success,failure,delay", "-" for 0. */
void queue_notify_format(unsigned notify, char *buf, size_t size);

#endif
