/*
 * store_reading — the message files open for reading in this process
 * (store_reading.c), so that the commit thread never recycles a file under
 * a reader.
 *
 * An expunged message's file is recycled (store_spare_recycle()): renamed
 * into spare/, cut, and written again in place by a later delivery. An
 * unlinked file stays whole for whoever has it open; a recycled one does
 * not, so a FETCH or RETR streaming it would send the start of one message
 * and the rest of another. Readers open through store_reading_open(), which
 * opens and registers the file's inode under one lock; the recycler checks
 * and renames under the same lock. Either the reader came first and the
 * file is removed instead of recycled, or the rename came first and the
 * reader finds no file (ENOENT, as after an unlink).
 *
 * Process-wide, since inodes are: every store of the process shares it.
 * Another process (the CLI) reading a file is not covered; it only reads
 * metadata lines, and checks them against the index.
 */
#ifndef FACTEUR_STORE_READING_H
#define FACTEUR_STORE_READING_H

/* openat(dir_fd, path, O_RDONLY) and the inode registered: the fd, or -1
   with errno. Close it with store_reading_close(). */
int store_reading_open(int dir_fd, const char *path);
/* Unregisters and closes an fd of store_reading_open(). */
void store_reading_close(int fd);
/* rename(from, to) unless `from` is open through store_reading_open(): 0
   renamed, 1 left in place (open), -1 with errno (ENOENT: no such file). */
int store_reading_rename_unread(const char *from, const char *to);

#endif
