import { and, asc, eq, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import type { Access } from '../access.js';
import { contactGroupMembers, contactGroups, friendships, users, type ContactGroupRow } from '../../db/schema/index.js';
import { sqlState, type Tx } from '../../db/transaction.js';
import { AppError } from '../app-error.js';
import type { Viewer } from '../devices.js';
import { isUuid } from '../ids.js';
import type { Person } from './friend-service.js';

export const MAX_GROUPS = 200;
export const MAX_GROUP_MEMBERS = 1000;

export interface ContactGroupView extends ContactGroupRow {
  members: Person[];
}

/**
 * Contact groups (G2): named groups of the viewer's friends ("family", "colleagues"). Members are
 * friends when added; ending a friendship takes the friend out of the groups. A share expands its
 * groups when it is sent (`expandGroups`): later changes do not change who received it.
 */
export class ContactGroupService {
  constructor(private readonly deps: { db: Db; access: Access }) {}

  async listGroups(viewer: Viewer): Promise<ContactGroupView[]> {
    const groups = await this.deps.db.select().from(contactGroups).where(eq(contactGroups.userId, viewer.user.id)).orderBy(asc(contactGroups.name));
    const members = await this.membersOf(this.deps.db, groups.map((g) => g.id));
    return groups.map((group) => ({ ...group, members: members.get(group.id) ?? [] }));
  }

  async getGroup(viewer: Viewer, groupId: string): Promise<ContactGroupView> {
    const group = await this.deps.access.contactGroup(viewer, 'view', groupId);
    return { ...group, members: (await this.membersOf(this.deps.db, [group.id])).get(group.id) ?? [] };
  }

  async createGroup(viewer: Viewer, rawName: string, memberIds: readonly string[] = []): Promise<ContactGroupView> {
    const name = groupName(rawName);
    const id = await this.deps.db.transaction(async (tx) => {
      // The owner's row: two creations are counted one after the other.
      await tx.select({ id: users.id }).from(users).where(eq(users.id, viewer.user.id)).for('update');
      const [{ n } = { n: 0 }] = await tx.select({ n: sql<number>`count(*)::int` }).from(contactGroups).where(eq(contactGroups.userId, viewer.user.id));
      if (n >= MAX_GROUPS) throw new AppError('LIMIT_REACHED', `At most ${MAX_GROUPS} contact groups`, { limit: MAX_GROUPS });
      const [group] = await tx.insert(contactGroups).values({ userId: viewer.user.id, name }).onConflictDoNothing().returning();
      if (!group) throw nameTaken(name);
      await this.addMembersIn(tx, viewer, group.id, memberIds);
      return group.id;
    });
    return this.getGroup(viewer, id);
  }

  async renameGroup(viewer: Viewer, groupId: string, rawName: string): Promise<ContactGroupView> {
    const name = groupName(rawName);
    const group = await this.deps.access.contactGroup(viewer, 'change', groupId);
    const [renamed] = await this.deps.db
      .update(contactGroups)
      .set({ name })
      .where(and(eq(contactGroups.id, group.id), sql`not exists (select 1 from ${contactGroups} other where other.user_id = ${viewer.user.id} and lower(other.name) = lower(${name}) and other.id <> ${group.id})`))
      .returning({ id: contactGroups.id })
      .catch((error: unknown) => Promise.reject(sqlState(error) === '23505' ? nameTaken(name) : error));
    if (!renamed) throw nameTaken(name);
    return this.getGroup(viewer, group.id);
  }

  async deleteGroup(viewer: Viewer, groupId: string): Promise<ContactGroupView> {
    await this.deps.access.contactGroup(viewer, 'change', groupId);
    const group = await this.getGroup(viewer, groupId);
    await this.deps.db.delete(contactGroups).where(eq(contactGroups.id, group.id));
    return group;
  }

  /** Adds friends to the group (those already in it stay); anyone who is not a friend refuses the whole call. */
  async addMembers(viewer: Viewer, groupId: string, memberIds: readonly string[]): Promise<ContactGroupView> {
    await this.deps.db.transaction(async (tx) => {
      const group = await this.deps.access.contactGroup(viewer, 'change', groupId, { tx, lock: true });
      await this.addMembersIn(tx, viewer, group.id, memberIds);
    });
    return this.getGroup(viewer, groupId);
  }

  async removeMember(viewer: Viewer, groupId: string, memberId: string): Promise<ContactGroupView> {
    const group = await this.deps.access.contactGroup(viewer, 'change', groupId);
    if (!isUuid(memberId)) throw new AppError('NOT_FOUND', 'No such member of the group');
    const [removed] = await this.deps.db
      .delete(contactGroupMembers)
      .where(and(eq(contactGroupMembers.groupId, group.id), eq(contactGroupMembers.memberId, memberId)))
      .returning();
    if (!removed) throw new AppError('NOT_FOUND', 'No such member of the group');
    return this.getGroup(viewer, group.id);
  }

  /**
   * The friends in these groups of the viewer's, now (for a share being sent): each once, and only
   * those who are still friends. An id that is not one of the viewer's groups is NOT_FOUND.
   */
  async expandGroups(viewer: Viewer, groupIds: readonly string[]): Promise<Person[]> {
    const ids = [...new Set(groupIds)];
    for (const id of ids) await this.deps.access.contactGroup(viewer, 'view', id);
    if (ids.length === 0) return [];
    return this.deps.db
      .selectDistinct({ id: users.id, nickname: users.nickname, email: users.email })
      .from(contactGroupMembers)
      .innerJoin(users, eq(users.id, contactGroupMembers.memberId))
      .innerJoin(friendships, and(eq(friendships.userId, viewer.user.id), eq(friendships.friendId, contactGroupMembers.memberId)))
      .where(sql`${contactGroupMembers.groupId} = any(${sql.param(ids)}::uuid[])`);
  }

  // -- internals -------------------------------------------------------------

  private async addMembersIn(tx: Tx, viewer: Viewer, groupId: string, memberIds: readonly string[]): Promise<void> {
    const ids = [...new Set(memberIds)];
    if (ids.length === 0) return;
    if (ids.length > MAX_GROUP_MEMBERS) throw new AppError('LIMIT_REACHED', `A group has at most ${MAX_GROUP_MEMBERS} members`, { limit: MAX_GROUP_MEMBERS });
    const malformed = ids.filter((id) => !isUuid(id));
    const friends = new Set(
      (
        await tx
          .select({ id: friendships.friendId })
          .from(friendships)
          .where(and(eq(friendships.userId, viewer.user.id), sql`${friendships.friendId} = any(${sql.param(ids.filter(isUuid))}::uuid[])`))
          // Held until the members are in: an unfriending at the same moment waits, then takes them out.
          .for('key share')
      ).map((f) => f.id),
    );
    const strangers = [...malformed, ...ids.filter((id) => isUuid(id) && !friends.has(id))];
    if (strangers.length > 0) throw new AppError('NOT_A_FRIEND', 'Only friends can be in a contact group', { userIds: strangers.slice(0, 20) });
    await tx.insert(contactGroupMembers).values(ids.map((memberId) => ({ groupId, memberId }))).onConflictDoNothing();
    const [{ n } = { n: 0 }] = await tx.select({ n: sql<number>`count(*)::int` }).from(contactGroupMembers).where(eq(contactGroupMembers.groupId, groupId));
    if (n > MAX_GROUP_MEMBERS) throw new AppError('LIMIT_REACHED', `A group has at most ${MAX_GROUP_MEMBERS} members`, { limit: MAX_GROUP_MEMBERS });
  }

  private async membersOf(db: Pick<Tx, 'select'>, groupIds: string[]): Promise<Map<string, Person[]>> {
    const byGroup = new Map<string, Person[]>();
    if (groupIds.length === 0) return byGroup;
    const rows = await db
      .select({ groupId: contactGroupMembers.groupId, id: users.id, nickname: users.nickname, email: users.email })
      .from(contactGroupMembers)
      .innerJoin(users, eq(users.id, contactGroupMembers.memberId))
      .where(sql`${contactGroupMembers.groupId} = any(${sql.param(groupIds)}::uuid[])`)
      .orderBy(asc(users.nickname), asc(users.id));
    for (const { groupId, ...member } of rows) byGroup.set(groupId, [...(byGroup.get(groupId) ?? []), member]);
    return byGroup;
  }
}

/** A group name as stored: trimmed, 1 to 100 printable characters. */
function groupName(name: string): string {
  const clean = String(name ?? '').trim();
  if (clean.length === 0 || clean.length > 100 || /[\u0000-\u001f\u007f]/.test(clean)) {
    throw new AppError('BAD_USER_INPUT', 'Group names have 1 to 100 printable characters', { field: 'name' });
  }
  return clean;
}

function nameTaken(name: string): AppError {
  return new AppError('CONFLICT', `You have a contact group named "${name}" already`, { field: 'name' });
}

