/*
 * store_stream — a stored message read from its file a piece at a time,
 * so that serving it (IMAP FETCH BODY[], POP3 RETR) never holds the whole
 * message in memory.
 *
 * A stream is an open descriptor on the message file (store_blob.c: one
 * metadata line, then the message bytes), checked against the index row
 * when opened: the metadata line names the blob id, is `header_offset`
 * bytes long and says `size=` the row's size, and the file holds exactly
 * that many bytes after it. Positions given to the stream are message
 * offsets (0 is the first byte after the metadata line). The descriptor
 * keeps the file readable after the message is expunged and its file
 * removed by another session, until store_stream_close().
 *
 * Line ends. The store keeps a message's bytes as they were given; a
 * message APPENDed with bare LF line ends stays so. IMAP and POP3 must
 * send CRLF: the "wire form" of a range is its bytes with a CR put before
 * every LF that lacks one. A cursor (store_stream_cursor_*) gives the wire
 * form of a range, or of a part of it (an IMAP partial <offset.length>
 * counts in wire bytes), in chunks of at most STORE_STREAM_CHUNK bytes,
 * and tells its exact length before the first chunk (an IMAP literal
 * needs it). A range that has no bare LF is passed as it is read; one that
 * has is converted as it goes. Knowing the length of a range larger than
 * STORE_STREAM_WINDOW costs one more read of that range (page cache)
 * before it is sent; an unsized cursor (POP3 TOP) reads nothing ahead.
 *
 * A stream and its cursors are used by one thread at a time; the buffers
 * are per thread (one read window and one chunk, whatever the number of
 * streams), so a chunk is valid until the next call on that thread.
 */
#ifndef FACTEUR_STORE_STREAM_H
#define FACTEUR_STORE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct store;
struct store_account;
struct store_message_info;

/* The largest chunk a cursor gives. */
#define STORE_STREAM_CHUNK (64 * 1024)
/* Bytes read from a message file at a time by cursors, and the largest
   range whose length is counted with the same read that sends it. */
#define STORE_STREAM_WINDOW (256 * 1024)

struct store_stream;

/* Opens the file of message row `message_row` of the account (as
   store_message_get() reads it): 1 and the stream; 0 if there is no such
   row; -1 on error, including a file that is missing or does not match its
   row (the kind is set in the handle, as for store_message_get()). The
   stream does not use the handle afterwards: it may be closed first. */
int store_stream_open(struct store_account *a, int64_t message_row,
		      struct store_stream **st_r, char **error_r);

/* Opens the file of a row of store_message_list() (POP3), whose path is
   `path`, relative to the directory `dir_fd` (AT_FDCWD: to the current
   directory, or an absolute path). 1 and the stream; 0 if the file is gone
   (expunged since the list was read); -1 and a reason if it cannot be read
   or does not match the row. */
int store_stream_open_file(int dir_fd, const char *path,
			   const struct store_message_info *m,
			   struct store_stream **st_r, char **error_r);

/* Closes; accepts NULL; sets *st to NULL. */
void store_stream_close(struct store_stream **st);

/* The message's size as stored (without the metadata line). */
uint64_t store_stream_size(const struct store_stream *st);

/* Reads up to `len` bytes of the message from `pos`: the count read, less
   than `len` only at the end of the message (0 at or past it); -1 and a
   reason on a read error or a file shorter than its row. */
ssize_t store_stream_read(struct store_stream *st, uint64_t pos, void *buf,
			  size_t len, char **error_r);

/* The header block (up to and including the empty line that ends it, or
   the whole message if it has none), read a chunk at a time until its end
   is found: 1 and malloc'd bytes (NUL-terminated, *len_r without the NUL),
   -1 on error. */
int store_stream_read_header(struct store_stream *st, char **data_r,
			     size_t *len_r, char **error_r);

/* The whole message, malloc'd and NUL-terminated (for what needs the MIME
   structure: body parts, BINARY). 1, or -1 on error. */
int store_stream_read_all(struct store_stream *st, char **data_r,
			  size_t *len_r, char **error_r);

/* Maps the message read-only (for a parse of its MIME structure without a
   copy in memory: the pages are the page cache's, and go with
   store_stream_unmap()): 1 and its bytes in *data_r (store_stream_size()
   of them), -1 and a reason on error. Mapping again gives the same
   mapping. */
int store_stream_map(struct store_stream *st, const char **data_r,
		     char **error_r);
/* Unmaps it (also done by store_stream_close()). */
void store_stream_unmap(struct store_stream *st);

/* ------------------------------------------------------------ line ends */
/* The state of a conversion to CRLF between two pieces of input. */
struct store_crlf {
	bool prev_cr;	 /* the last input byte was a CR */
	bool lf_pending; /* the next input byte is an LF whose CR was
			    given already */
};

/* Bare LFs (an LF not after a CR) in in[0..len), where `prev_cr` says
   whether the byte before in[0] was a CR. The wire form is that many bytes
   longer than the input. */
size_t store_crlf_count(bool prev_cr, const char *in, size_t len);

/* Converts input into its wire form: returns the input consumed and sets
   *out_len_r to the bytes written to out[0..out_max). It stops when the
   input is used up or out is full (out_max >= 1: an LF whose CR fills the
   last byte is left for the next call, c->lf_pending set). */
size_t store_crlf_convert(struct store_crlf *c, const char *in, size_t len,
			  char *out, size_t out_max, size_t *out_len_r);

/* The wire form of in[0..len) (malloc'd, NUL-terminated), or NULL when it
   is the same as the input (no bare LF). */
char *store_crlf_dup(const char *in, size_t len, size_t *len_r);

/* ------------------------------------------------------------ cursors */
/* The wire form of a range of a message, given a chunk at a time. */
struct store_stream_cursor {
	struct store_stream *st;
	uint64_t pos, end; /* message bytes still to read */
	uint64_t left;	   /* wire bytes still to give */
	bool convert;	   /* the range has bare LFs */
	bool unsized;	   /* left is not counted: stop at `end` */
	struct store_crlf crlf;
};

/* Sets `c` to give the wire form of message bytes [from, to), from wire
   offset `skip` on, at most `max` bytes (UINT64_MAX: to the end); *len_r
   is the exact number of bytes the cursor will give (0 when skip is past
   the end). `st` must stay open while the cursor is used. 0, or -1 and a
   reason on a read error. */
int store_stream_cursor_init(struct store_stream_cursor *c,
			     struct store_stream *st, uint64_t from,
			     uint64_t to, uint64_t skip, uint64_t max,
			     uint64_t *len_r, char **error_r);

/* The same, without counting: the wire form of [from, to) from its start,
   whose length is only known at its end (POP3 TOP, which stops early). */
void store_stream_cursor_init_unsized(struct store_stream_cursor *c,
				      struct store_stream *st, uint64_t from,
				      uint64_t to);

/* The next chunk: its length (at most STORE_STREAM_CHUNK) with *data_r
   pointing into a per-thread buffer valid until the next call on this
   thread; 0 when everything was given; -1 and a reason on a read error or
   a file that changed under us. */
ssize_t store_stream_cursor_next(struct store_stream_cursor *c,
				 const char **data_r, char **error_r);

#endif
