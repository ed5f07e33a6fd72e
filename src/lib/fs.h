/*
 * fs — files made durable: write, fsync, rename, fsync the directory; and
 * the removal of a whole tree.
 *
 * Every function returns 0 on success, or -1 with errno set and a message
 * in *error_r (a static or thread-local string: copy it to keep it).
 */
#ifndef FACTEUR_FS_H
#define FACTEUR_FS_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p: creates each missing component with `mode`. */
int fs_mkdir_p(const char *path, mode_t mode, const char **error_r);
/* fsync()s the directory `path`, making renames and creations in it durable. */
int fs_fsync_dir(const char *path, const char **error_r);
/* Writes all of `data` to `fd`, retrying on short writes and EINTR. */
int fs_write_all(int fd, const void *data, size_t len);
/* Writes all of iov[0..iovcnt) to `fd`, retrying on short writes and EINTR
   (the iovecs are advanced in place). 0, or -1 with errno. */
struct iovec;
int fs_writev_all(int fd, struct iovec *iov, int iovcnt);
/* Writes `path` atomically and durably: a temporary file beside it is
   written, fsync'd, renamed over `path`, and the directory fsync'd. */
int fs_write_file_durable(const char *path, const void *data, size_t len,
			  mode_t mode, const char **error_r);
/* Reads a whole file into a NUL-terminated malloc'd buffer (*len_r excludes
   the NUL). Refuses files larger than max_size (errno EFBIG). */
int fs_read_file(const char *path, size_t max_size, char **data_r,
		 size_t *len_r, const char **error_r);
/* rm -r: removes `path` and everything below it, without following
   symbolic links (a link is removed, not what it points to). A missing
   `path` is not an error. Stops at the first failure. */
int fs_remove_tree(const char *path, const char **error_r);

#endif
