/*
 * store_spare — empty message files created ahead of need (store_spare.c).
 *
 * Creating a file costs an inode allocation, which on some file systems is
 * far from free: on ext4 without a journal the allocator skips every inode
 * freed in the last seconds, reading inode tables as it goes, a few hundred
 * microseconds of CPU per file on a busy machine. The commit thread takes
 * a file made in advance, by a thread of this file, and only writes and
 * renames it, so that one client waiting for each OK does not wait for
 * that too.
 *
 * A pool is kept for a few account directories at a time, those whose
 * deliveries keep coming: a directory gets one when it asks while a slot is
 * free or unused for STORE_SPARE_IDLE_MS. A spare is an empty file
 * <account dir>/spare/<id>, open for writing (its own directory, so that
 * tmp/ still holds only files being written); the ones not taken are
 * removed when the pool is freed or gives the slot up, and those a crash
 * left when the directory next gets a slot and they are an hour old.
 *
 * The files of expunged messages are recycled into the pool of their
 * directory, when it has one: emptied and renamed into spare/, they are
 * what the thread hands out first, so that an account whose messages come
 * and go allocates and frees no inode at all. It matters most on the file
 * system above, where the allocator's cost grows with the number of inodes
 * freed in the last minute: exactly the case of a mailbox being emptied
 * while mail comes in.
 */
#ifndef FACTEUR_STORE_SPARE_H
#define FACTEUR_STORE_SPARE_H

#include "store/store_private.h"

struct store_spare;

/* A pool with no directory yet; its thread starts on the first request. */
struct store_spare *store_spare_new(void);
/* Stops the thread, closes and removes every file not taken, frees the
   pool and sets *sp to NULL. NULL is accepted. */
void store_spare_free(struct store_spare **sp);
/* Takes an empty file <account_dir>/spare/<id>, or a recycled one of a
   single byte, to be written from its start: 1 with id_r filled and fd_r
   open for writing at offset 0 (the caller writes more than a byte,
   closes it, and renames or removes the file), or 0 when none is ready. Either way the directory's pool is filled
   again in the background when it has (or may get) a slot. */
int store_spare_take(struct store_spare *sp, const char *account_dir,
		     char id_r[STORE_BLOB_ID_LEN + 1], int *fd_r);
/* Recycles <account_dir>/blobs/<blob>, the file of an expunged message
   (its row deleted, the deletion durable): renamed into spare/ under a
   new id and emptied, for the pool to hand out. 0 when recycled, or when
   the file was gone already; -1 when it was left in place (the directory
   has no pool, or enough recycled files already, or a reader of this
   process has it open (store_reading.h), or the file system refused): the
   caller removes it. */
int store_spare_recycle(struct store_spare *sp, const char *account_dir,
			const char *blob);

#endif
