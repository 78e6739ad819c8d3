def test_earn_then_redeem_updates_the_balance(api) -> None:
    member_id = api.enrol("13800000001")
    assert api.earn(member_id, 100).status_code == 201
    response = api.redeem(member_id, 30)
    assert response.status_code == 201
    assert response.json()["balance"]["available"] == 70
