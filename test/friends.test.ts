import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, ApiError } from '../src/client/api-client.js';
import { startTestApp, type TestApp } from './support/app.js';
import { newClient } from './support/files.js';

type Person = { id: string; nickname: string; email: string };
type Request = { id: string; status: string; toEmail: string; from: Person; to: Person | null };
const REQUEST = 'id status toEmail from { id nickname email } to { id email }';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  expect(app.loggedErrors).toEqual([]);
  await app.close();
});

type Client = ApiClient & { userId: string; email: string };
const ask = async (from: Client, email: string) => (await from.graphql<{ requestFriend: Request }>(`mutation($e: String!) { requestFriend(email: $e) { ${REQUEST} } }`, { e: email })).requestFriend;
const requests = async (client: Client, direction: 'INCOMING' | 'OUTGOING') =>
  (await client.graphql<{ friendRequests: Request[] }>(`query($d: FriendRequestDirection!) { friendRequests(direction: $d) { ${REQUEST} } }`, { d: direction })).friendRequests;
const friendsOf = async (client: Client) => (await client.graphql<{ friends: Person[] }>('{ friends { id nickname email } }')).friends.map((f) => f.id);
const accept = (client: Client, id: string) => client.graphql<{ acceptFriendRequest: Person }>('mutation($id: ID!) { acceptFriendRequest(id: $id) { id email } }', { id });
async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error, `expected ${code}`).toBeInstanceOf(ApiError);
  expect((error as ApiError).code, (error as ApiError).message).toBe(code);
}
async function befriend(a: Client, b: Client): Promise<void> {
  const request = await ask(a, b.email);
  await accept(b, request.id);
}

describe('friends (S6)', () => {
  it('asks by email, the addressee sees and accepts, and both are friends', async () => {
    const anna = await newClient(app);
    const ben = await newClient(app);
    const request = await ask(anna, ben.email.toUpperCase());
    // Whether the address has an account is not told before its owner accepts.
    expect(request).toMatchObject({ status: 'PENDING', toEmail: ben.email, from: { id: anna.userId }, to: null });
    // Asking again is the same request.
    expect((await ask(anna, ben.email)).id).toBe(request.id);
    expect((await requests(ben, 'INCOMING')).map((r) => r.id)).toEqual([request.id]);
    expect((await requests(anna, 'OUTGOING')).map((r) => r.id)).toEqual([request.id]);
    expect((await accept(ben, request.id)).acceptFriendRequest.id).toBe(anna.userId);
    expect(await friendsOf(anna)).toEqual([ben.userId]);
    expect(await friendsOf(ben)).toEqual([anna.userId]);
    expect(await app.services.friends.areFriends(anna.userId, ben.userId)).toBe(true);
    expect(await requests(ben, 'INCOMING')).toEqual([]);
    // Answered: it cannot be answered again, nor asked again.
    await expectCode(accept(ben, request.id), 'NOT_FOUND');
    await expectCode(ask(anna, ben.email), 'ALREADY_FRIENDS');
    await expectCode(ask(ben, anna.email), 'ALREADY_FRIENDS');
  });

  it('keeps a request to an address without an account until someone signs up with it', async () => {
    const anna = await newClient(app);
    const email = `later-${Date.now()}@example.com`;
    const request = await ask(anna, email);
    expect(request).toMatchObject({ status: 'PENDING', to: null });
    const { token } = await app.signUp(email);
    const newcomer = Object.assign(new ApiClient(app.url, token), { userId: '', email });
    const [incoming] = await requests(newcomer, 'INCOMING');
    expect(incoming).toMatchObject({ id: request.id, from: { id: anna.userId } });
    const declined = await newcomer.graphql<{ declineFriendRequest: Request }>(`mutation($id: ID!) { declineFriendRequest(id: $id) { ${REQUEST} } }`, { id: request.id });
    expect(declined.declineFriendRequest.status).toBe('DECLINED');
    expect(await requests(anna, 'OUTGOING')).toEqual([]);
    expect(await friendsOf(anna)).toEqual([]);
  });

  it('makes two people who ask each other friends; a sender can withdraw; nobody else can answer', async () => {
    const [anna, ben, carl] = [await newClient(app), await newClient(app), await newClient(app)];
    await ask(anna, ben.email);
    const answer = await ask(ben, anna.email);
    expect(answer.status).toBe('ACCEPTED');
    expect(await friendsOf(ben)).toEqual([anna.userId]);

    const open = await ask(anna, carl.email);
    // Not the addressee: it does not exist for them.
    await expectCode(accept(ben, open.id), 'NOT_FOUND');
    await expectCode(accept(anna, open.id), 'NOT_FOUND');
    const cancelled = await anna.graphql<{ cancelFriendRequest: Request }>(`mutation($id: ID!) { cancelFriendRequest(id: $id) { ${REQUEST} } }`, { id: open.id });
    expect(cancelled.cancelFriendRequest.status).toBe('CANCELLED');
    expect(await requests(carl, 'INCOMING')).toEqual([]);
    await expectCode(accept(carl, open.id), 'NOT_FOUND');
  });

  it('makes two people who ask each other at the same moment friends, once', async () => {
    for (let i = 0; i < 3; i++) {
      const [anna, ben] = [await newClient(app), await newClient(app)];
      const answers = await Promise.all([ask(anna, ben.email), ask(ben, anna.email)]);
      expect(answers.map((a) => a.status)).toContain('ACCEPTED');
      expect(await friendsOf(anna)).toEqual([ben.userId]);
      expect(await friendsOf(ben)).toEqual([anna.userId]);
      // Nothing left waiting either way.
      expect([...(await requests(anna, 'INCOMING')), ...(await requests(anna, 'OUTGOING')), ...(await requests(ben, 'INCOMING')), ...(await requests(ben, 'OUTGOING'))]).toEqual([]);
    }
  });

  it('blocks only someone the viewer knows; a user id alone tells nothing', async () => {
    const [anna, stranger] = [await newClient(app), await newClient(app)];
    await expectCode(anna.graphql('mutation($id: ID!) { blockUser(userId: $id) { id email } }', { id: stranger.userId }), 'NOT_FOUND');
  });

  it('blocks: the blocked user is not told, their requests never arrive, a friendship ends', async () => {
    const [anna, eve] = [await newClient(app), await newClient(app)];
    await befriend(anna, eve);
    const blocked = await anna.graphql<{ blockUser: Person }>('mutation($id: ID!) { blockUser(userId: $id) { id } }', { id: eve.userId });
    expect(blocked.blockUser.id).toBe(eve.userId);
    expect(await friendsOf(anna)).toEqual([]);
    expect(await friendsOf(eve)).toEqual([]);
    // Eve asks: to her it looks like any open request; Anna never sees it.
    const request = await ask(eve, anna.email);
    expect(request.status).toBe('PENDING');
    expect((await requests(eve, 'OUTGOING')).map((r) => r.status)).toEqual(['PENDING']);
    expect(await requests(anna, 'INCOMING')).toEqual([]);
    await expectCode(accept(anna, request.id), 'NOT_FOUND');
    expect((await anna.graphql<{ blockedUsers: Person[] }>('{ blockedUsers { id } }')).blockedUsers.map((p) => p.id)).toEqual([eve.userId]);
    // Unblocked: the request Eve made meanwhile goes through when she asks again.
    await anna.graphql('mutation($id: ID!) { unblockUser(userId: $id) { id } }', { id: eve.userId });
    const again = await ask(eve, anna.email);
    expect(again.id).toBe(request.id);
    expect((await requests(anna, 'INCOMING')).map((r) => r.id)).toEqual([request.id]);
  });

  it('ends a friendship for both, and takes each out of the other\'s groups', async () => {
    const [anna, ben] = [await newClient(app), await newClient(app)];
    await befriend(anna, ben);
    await anna.graphql('mutation($m: [ID!]) { createContactGroup(name: "Family", memberIds: $m) { id } }', { m: [ben.userId] });
    await ben.graphql('mutation($m: [ID!]) { createContactGroup(name: "Old school", memberIds: $m) { id } }', { m: [anna.userId] });
    await ben.graphql('mutation($id: ID!) { removeFriend(userId: $id) { id } }', { id: anna.userId });
    expect(await friendsOf(anna)).toEqual([]);
    const groups = async (client: Client) => (await client.graphql<{ contactGroups: { memberCount: number }[] }>('{ contactGroups { memberCount } }')).contactGroups;
    expect(await groups(anna)).toEqual([{ memberCount: 0 }]);
    expect(await groups(ben)).toEqual([{ memberCount: 0 }]);
    await expectCode(ben.graphql('mutation($id: ID!) { removeFriend(userId: $id) { id } }', { id: anna.userId }), 'NOT_FOUND');
  });

  it('refuses bad input with stable codes and changes nothing', async () => {
    const anna = await newClient(app);
    await expectCode(ask(anna, anna.email), 'CANNOT_BEFRIEND_SELF');
    for (const email of ['not-an-email', `${'a'.repeat(10_000)}@example.com`, '']) await expectCode(ask(anna, email), 'BAD_USER_INPUT');
    await expectCode(accept(anna, 'not-a-uuid'), 'BAD_USER_INPUT');
    await expectCode(anna.graphql('mutation($id: ID!) { blockUser(userId: $id) { id } }', { id: anna.userId }), 'NOT_FOUND');
    await expectCode(anna.graphql('mutation($id: ID!) { blockUser(userId: $id) { id } }', { id: '6f1c2a34-9b7e-4c1d-8e2f-0a1b2c3d4e5f' }), 'NOT_FOUND');
    expect(await requests(anna, 'OUTGOING')).toEqual([]);
    // Anonymous: sign in first.
    const anonymous = await app.gql('{ friends { id } }');
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const anonymousAsk = await app.gql('mutation($e: String!) { requestFriend(email: $e) { id } }', { e: 'x@example.com' });
    expect(anonymousAsk.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('contact groups (G2)', () => {
  const GROUP = 'id name memberCount members { id }';
  type Group = { id: string; name: string; memberCount: number; members: { id: string }[] };

  it('groups friends; a send expands groups to the friends in them now, each once', async () => {
    const [anna, ben, carl, dora, stranger] = [await newClient(app), await newClient(app), await newClient(app), await newClient(app), await newClient(app)];
    for (const friend of [ben, carl, dora]) await befriend(anna, friend);
    const family = (await anna.graphql<{ createContactGroup: Group }>(`mutation($m: [ID!]) { createContactGroup(name: " Family ", memberIds: $m) { ${GROUP} } }`, { m: [ben.userId, carl.userId] })).createContactGroup;
    expect(family).toMatchObject({ name: 'Family', memberCount: 2 });
    const work = (await anna.graphql<{ createContactGroup: Group }>(`mutation { createContactGroup(name: "Colleagues") { ${GROUP} } }`)).createContactGroup;
    await anna.graphql(`mutation($id: ID!, $m: [ID!]!) { addContactGroupMembers(id: $id, memberIds: $m) { ${GROUP} } }`, { id: work.id, m: [carl.userId, dora.userId] });
    // Only friends.
    await expectCode(anna.graphql(`mutation($id: ID!, $m: [ID!]!) { addContactGroupMembers(id: $id, memberIds: $m) { id } }`, { id: work.id, m: [stranger.userId] }), 'NOT_A_FRIEND');
    await expectCode(anna.graphql('mutation { createContactGroup(name: "family") { id } }'), 'CONFLICT');
    await expectCode(anna.graphql('mutation { createContactGroup(name: "Family") { id } }'), 'CONFLICT');
    await expectCode(anna.graphql(`mutation($id: ID!) { renameContactGroup(id: $id, name: "Family") { id } }`, { id: work.id }), 'CONFLICT');
    expect((await anna.graphql<{ renameContactGroup: Group }>(`mutation($id: ID!) { renameContactGroup(id: $id, name: "Work") { ${GROUP} } }`, { id: work.id })).renameContactGroup.name).toBe('Work');

    const viewer = await app.services.devices.authenticate(anna.token!, { address: '127.0.0.1', port: 1, userAgent: null });
    const expanded = await app.services.contactGroups.expandGroups(viewer, [family.id, work.id, family.id]);
    expect(expanded.map((p) => p.id).sort()).toEqual([ben.userId, carl.userId, dora.userId].sort());
    // Someone no longer a friend is not reached through a group.
    await dora.graphql('mutation($id: ID!) { removeFriend(userId: $id) { id } }', { id: anna.userId });
    expect((await app.services.contactGroups.expandGroups(viewer, [work.id])).map((p) => p.id)).toEqual([carl.userId]);

    const removed = await anna.graphql<{ removeContactGroupMember: Group }>(`mutation($id: ID!, $m: ID!) { removeContactGroupMember(id: $id, memberId: $m) { ${GROUP} } }`, { id: family.id, m: carl.userId });
    expect(removed.removeContactGroupMember.members.map((m) => m.id)).toEqual([ben.userId]);
    await anna.graphql('mutation($id: ID!) { deleteContactGroup(id: $id) { id } }', { id: family.id });
    expect((await anna.graphql<{ contactGroups: Group[] }>(`{ contactGroups { ${GROUP} } }`)).contactGroups.map((g) => g.name)).toEqual(['Work']);
    expect(await friendsOf(anna)).toHaveLength(2);
  });

  it('keeps each user to their own groups, and refuses bad input', async () => {
    const [anna, ben] = [await newClient(app), await newClient(app)];
    const group = (await anna.graphql<{ createContactGroup: Group }>('mutation { createContactGroup(name: "Mine") { id } }')).createContactGroup;
    for (const [query, variables] of [
      ['query($id: ID!) { contactGroup(id: $id) { id } }', { id: group.id }],
      ['mutation($id: ID!) { renameContactGroup(id: $id, name: "Theirs") { id } }', { id: group.id }],
      ['mutation($id: ID!) { deleteContactGroup(id: $id) { id } }', { id: group.id }],
      ['mutation($id: ID!) { addContactGroupMembers(id: $id, memberIds: []) { id } }', { id: group.id }],
    ] as const) {
      await expectCode(ben.graphql(query, variables), 'NOT_FOUND');
    }
    const viewer = await app.services.devices.authenticate(ben.token!, { address: '127.0.0.1', port: 1, userAgent: null });
    await expect(app.services.contactGroups.expandGroups(viewer, [group.id])).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expectCode(anna.graphql('mutation($n: String!) { createContactGroup(name: $n) { id } }', { n: 'x'.repeat(101) }), 'BAD_USER_INPUT');
    await expectCode(anna.graphql('mutation { createContactGroup(name: "   ") { id } }'), 'BAD_USER_INPUT');
    const tooMany = Array.from({ length: 1001 }, () => '6f1c2a34-9b7e-4c1d-8e2f-0a1b2c3d4e5f');
    await expectCode(anna.graphql('mutation($id: ID!, $m: [ID!]!) { addContactGroupMembers(id: $id, memberIds: $m) { id } }', { id: group.id, m: tooMany }), 'BAD_USER_INPUT');
    expect((await anna.graphql<{ contactGroup: Group }>('query($id: ID!) { contactGroup(id: $id) { name memberCount } }', { id: group.id })).contactGroup).toEqual({ name: 'Mine', memberCount: 0 });
  });
});
